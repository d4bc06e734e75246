//! One file per routed screen, and the lazy route that loads each.

pub mod alerts;
pub mod audit;
pub mod customers;
pub mod invoice;
pub mod login;
pub mod not_found;
pub mod overview;
pub mod profile;
pub mod reconcile;
pub mod reports;
pub mod runs;
pub mod staff;
pub mod week;

/// For each page, a lazy route (`Lazy::<Route>::new()` in the router) whose view is the page.
///
/// The WebAssembly is built with `cargo leptos build --split` (both of the Makefile's builds):
/// the code only one page uses is then a file of its own, which the browser loads the first time
/// the page is shown (the server-rendered page links to the files of the page it holds, so that
/// they load beside the main module); code that several pages use is in files they share. A
/// WebAssembly build without `--split` would import the splitter's loader and not start. On the
/// server a lazy route is an ordinary one.
macro_rules! lazy_pages {
    ($($route:ident => $page:ident,)*) => {$(
        #[doc = concat!("The lazy route of [`", stringify!($page), "`].")]
        #[derive(Clone, Copy, Debug)]
        pub struct $route;

        #[leptos_router::lazy_route]
        impl leptos_router::LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_route: Self) -> leptos::prelude::AnyView {
                use leptos::prelude::*;
                view! { <$page /> }.into_any()
            }
        }
    )*};
}

use alerts::AlertsPage;
use audit::AuditLogPage;
use customers::{CustomerPage, UsersPage};
use invoice::{InvoicePage, ReceiptPage};
use login::LoginPage;
use overview::OverviewPage;
use profile::ProfilePage;
use reconcile::ReconcilePage;
use reports::ReportsPage;
use runs::{RunPage, RunsPage};
use staff::StaffPage;
use week::WeekPage;

lazy_pages! {
    OverviewRoute => OverviewPage,
    LoginRoute => LoginPage,
    AuditLogRoute => AuditLogPage,
    StaffRoute => StaffPage,
    ProfileRoute => ProfilePage,
    WeekRoute => WeekPage,
    RunsRoute => RunsPage,
    RunRoute => RunPage,
    ReportsRoute => ReportsPage,
    ReconcileRoute => ReconcilePage,
    AlertsRoute => AlertsPage,
    UsersRoute => UsersPage,
    CustomerRoute => CustomerPage,
    InvoiceRoute => InvoicePage,
    ReceiptRoute => ReceiptPage,
}
