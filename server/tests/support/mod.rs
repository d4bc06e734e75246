//! Test helpers: a fresh database of each kind per test, and the `billing` binary as a process.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use server::config::DatabaseUrl;
use server::db::Db;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub mod receivers;

/// The PostgreSQL server tests create their databases on: `TEST_DATABASE_URL`, else the one on
/// this machine's standard port. A test that cannot reach it fails; it never skips.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A database that exists only for one test, removed when dropped.
pub struct TestDb {
    pub kind: Kind,
    /// What to put in `DATABASE_URL` for a `billing` process.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    /// An empty database (no migrations applied).
    pub async fn empty(kind: Kind) -> TestDb {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary folder");
                let url = format!("sqlite://{}", dir.path().join("billing.db").display());
                TestDb { kind, url, _dir: Some(dir), pg_name: None }
            }
            Kind::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("billing_test_{}", uuid::Uuid::new_v4().simple());
                let admin_db = connect(&admin).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL tests need a server: none answered at {admin} ({e}). \
                         Set TEST_DATABASE_URL or run the tests with `make test`, which starts one."
                    )
                });
                let Db::Postgres(pool) = &admin_db else { unreachable!() };
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(pool)
                    .await
                    .expect("create test database");
                admin_db.close().await;
                let mut url = url::Url::parse(&admin).expect("TEST_DATABASE_URL is a URL");
                url.set_path(&name);
                TestDb { kind, url: url.to_string(), _dir: None, pg_name: Some(name) }
            }
        }
    }

    /// A database with every migration applied.
    pub async fn migrated(kind: Kind) -> (TestDb, Db) {
        let test_db = TestDb::empty(kind).await;
        let db = test_db.connect().await;
        db.migrate().await.expect("migrations apply");
        (test_db, db)
    }

    /// A new pool on this database.
    pub async fn connect(&self) -> Db {
        connect(&self.url).await.expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else { return };
        // Drop runs outside async: use a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let db = connect(&postgres_admin_url()).await.ok()?;
                if let Db::Postgres(pool) = &db {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(pool)
                        .await;
                }
                db.close().await;
                Some(())
            })
        })
        .join();
    }
}

async fn connect(url: &str) -> Result<Db, String> {
    let url = DatabaseUrl::parse(url)?;
    Db::connect(&url).await.map_err(|e| e.to_string())
}

/// Runs each test body once on SQLite and once on PostgreSQL, as `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! on_both_databases {
    ($(async fn $name:ident($kind:ident: Kind) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn body($kind: $crate::support::Kind) $body
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() { body($crate::support::Kind::Sqlite).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() { body($crate::support::Kind::Postgres).await }
            }
        )*
    };
}

/// The `billing` binary these tests start: the one built with them, or `BILLING_BIN` when set
/// (the soak runs a copy, so that a build beside it cannot change the binary under it).
pub fn billing_bin() -> std::path::PathBuf {
    std::env::var_os("BILLING_BIN").map(Into::into).unwrap_or_else(|| env!("CARGO_BIN_EXE_billing").into())
}

/// The `billing` binary built for these tests, on the simulator inside its process with test
/// provisioning (what `make demo` runs); a test of another provider sets `PSP_URL` itself.
pub fn billing() -> Command {
    let mut command = Command::new(billing_bin());
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("PSP_URL", "sim")
        .env("PSP_PROVISION", "test")
        .kill_on_drop(true)
        .stdin(Stdio::null());
    command
}

/// A running `billing serve`, stopped when dropped.
pub struct ServerProcess {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl ServerProcess {
    /// Starts `billing serve --addr 127.0.0.1:0` on `database_url` and waits for its address.
    pub async fn start(database_url: &str) -> ServerProcess {
        Self::start_with(billing(), database_url).await
    }

    /// As [`ServerProcess::start`], from a prepared command (extra environment, say).
    pub async fn start_with(mut command: Command, database_url: &str) -> ServerProcess {
        let mut child = command
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env("DATABASE_URL", database_url)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start billing serve");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if let Some(rest) = line.split("serving ").nth(1) {
                    return rest.split_whitespace().next().expect("an address").to_string();
                }
            }
            panic!("billing serve exited before printing its address")
        })
        .await
        .expect("billing serve printed its address within 30 s");
        ServerProcess { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let pid = self.child.id().expect("still running") as i32;
        kill(Pid::from_raw(pid), Signal::SIGTERM).expect("send SIGTERM");
        tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("billing serve stopped within 15 s of SIGTERM")
            .expect("wait for billing serve")
    }
}

/// The password every test account gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// The email of the test account with `role`.
pub fn email_of(role: app::model::staff::Role) -> String {
    format!("{role}@test.example")
}

/// A migrated database with one account per role, and a `billing serve` on it.
pub struct StaffedServer {
    pub test_db: TestDb,
    pub db: Db,
    pub server: ServerProcess,
}

impl StaffedServer {
    pub async fn start(kind: Kind) -> StaffedServer {
        Self::start_with_env(kind, &[]).await
    }

    /// As [`StaffedServer::start`], with extra environment for `billing serve`.
    pub async fn start_with_env(kind: Kind, env: &[(&str, &str)]) -> StaffedServer {
        let (test_db, db) = TestDb::migrated(kind).await;
        let actor = server::db::audit::Actor::cli();
        for role in app::model::staff::Role::ALL {
            server::staff::add(&db, &actor, &email_of(role), role, PASSWORD.into()).await.expect("add staff");
        }
        let mut command = billing();
        command.envs(env.iter().copied());
        let server = ServerProcess::start_with(command, &test_db.url).await;
        StaffedServer { test_db, db, server }
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// A client that keeps cookies, sends this site's Origin (as a browser would) and does not
    /// follow redirects.
    pub fn browser(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::ORIGIN, self.server.base.parse().unwrap());
        reqwest::Client::builder()
            .cookie_store(true)
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// A browser-like client signed in as `email`; panics if the sign-in fails.
    pub async fn signed_in(&self, email: &str) -> reqwest::Client {
        let client = self.browser();
        let response = self.login(&client, email, PASSWORD).await;
        assert_eq!(response.status(), 303);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(location, "/", "signing in as {email} should succeed");
        client
    }

    /// Posts the sign-in form.
    pub async fn login(&self, client: &reqwest::Client, email: &str, password: &str) -> reqwest::Response {
        client
            .post(self.url("/login"))
            .form(&[("email", email), ("password", password), ("next", "/")])
            .send()
            .await
            .unwrap()
    }

    /// A ride-ingestion key (as the carpool app holds one), made by an admin over the API.
    pub async fn ingestion_key(&self) -> String {
        let admin = self.token_for(&email_of(app::model::staff::Role::Admin)).await;
        let created: serde_json::Value = reqwest::Client::new()
            .post(self.url("/api/v1/api-keys"))
            .bearer_auth(admin)
            .json(&serde_json::json!({"name": "carpool app"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        created["key"].as_str().unwrap().to_owned()
    }

    /// A personal access token for `email`, issued through the CLI.
    pub async fn token_for(&self, email: &str) -> String {
        let output = billing()
            .args(["staff", "token", "--email", email, "--name", "test"])
            .env("DATABASE_URL", &self.test_db.url)
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }
}

/// Announces a body of `bytes` bytes to `path` without sending it and returns the HTTP status:
/// a server that enforces its size limit answers before reading (a real client sending the
/// whole body could see the connection closed mid-send instead).
pub async fn status_of_oversized_post(base: &str, path: &str, bytes: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: {base}\r\nContent-Type: application/json\r\nContent-Length: {bytes}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("send headers");
    let mut answer = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("an answer")
        .expect("read");
    let line = String::from_utf8_lossy(&answer[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {line:?}"))
}

/// A running `billing psp-sim`, killed when dropped.
pub struct PspSim {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

/// The test-mode key the product uses against the simulator in tests.
pub const SIM_KEY: &str = "sk_test_product";

impl PspSim {
    /// Starts `billing psp-sim --addr 127.0.0.1:0 ARGS…` and waits for its address.
    pub async fn start(args: &[&str]) -> PspSim {
        let mut child = billing()
            .args(["psp-sim", "--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start billing psp-sim");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("psp-sim printed its address within 30 s")
            .expect("read stdout")
            .expect("a line");
        let base = line.strip_prefix("psp-sim listening on ").expect("the address line").to_owned();
        PspSim { child, base }
    }

    /// Has the simulator send its signed events to `url`, signed with `secret`.
    pub async fn send_webhooks_to(&self, url: &str, secret: &str) {
        let answer = reqwest::Client::new()
            .put(format!("{}/sim/faults", self.base))
            .json(&serde_json::json!({ "webhook_url": url, "webhook_secret": secret }))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{}", answer.text().await.unwrap());
    }

    /// Every money movement the simulator made, in order.
    pub async fn ledger(&self) -> Vec<serde_json::Value> {
        let body: serde_json::Value =
            reqwest::get(format!("{}/sim/ledger", self.base)).await.unwrap().json().await.unwrap();
        body["entries"].as_array().unwrap().clone()
    }

    /// A `billing` command that talks to this simulator and `database_url`.
    pub fn billing(&self, database_url: &str) -> Command {
        let mut command = billing();
        command.env("DATABASE_URL", database_url).env("PSP_URL", &self.base).env("PSP_API_KEY", SIM_KEY);
        command
    }
}

/// Last week (UTC), the one demo data fills and tests run.
pub fn last_week() -> String {
    app::model::week::BillingWeek::containing(chrono::Utc::now(), chrono_tz::Tz::UTC).previous().to_string()
}

/// A second finance member, to decide refunds another finance member would otherwise see.
pub const FINANCE_TWO: &str = "finance.two@test.example";

/// A week charged by a run against a simulator, and `billing serve` on the same database and
/// simulator (asking the provider with a one-second timeout).
pub struct Charged {
    pub app: StaffedServer,
    pub sim: PspSim,
}

pub async fn charged_week(kind: Kind, sim_args: &[&str]) -> Charged {
    charged_week_with(kind, sim_args, &[]).await
}

/// As [`charged_week`], with extra environment for `billing serve`.
pub async fn charged_week_with(kind: Kind, sim_args: &[&str], serve_env: &[(&str, &str)]) -> Charged {
    let (test_db, db) = TestDb::migrated(kind).await;
    let actor = server::db::audit::Actor::cli();
    for role in app::model::staff::Role::ALL {
        server::staff::add(&db, &actor, &email_of(role), role, PASSWORD.into()).await.unwrap();
    }
    server::staff::add(&db, &actor, FINANCE_TWO, app::model::staff::Role::Finance, PASSWORD.into())
        .await
        .unwrap();
    db.put_setting(
        "run_settings",
        &serde_json::json!({ "provider_timeout_seconds": 1, "canary_size": 3 }),
        "test",
    )
    .await
    .unwrap();
    let sim = PspSim::start(sim_args).await;
    let week = last_week();
    for args in [
        vec!["demo-data", "--passengers", "12", "--drivers", "3", "--weeks", "1", "--seed", "9"],
        vec!["run", "--week", &week, "--approve", "--workers", "2"],
    ] {
        let out = sim.billing(&test_db.url).args(&args).output().await.unwrap();
        assert!(
            out.status.code().is_some_and(|c| c == 0 || c == 3),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut command = sim.billing(&test_db.url);
    command.envs(serve_env.iter().copied());
    let server = ServerProcess::start_with(command, &test_db.url).await;
    Charged { app: StaffedServer { test_db, db, server }, sim }
}

/// Runs `sql` on either database (a statement the product itself would not make).
pub async fn execute(db: &Db, sql: &str) {
    match db {
        Db::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()).unwrap(),
        Db::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()).unwrap(),
    }
}

pub async fn rows<T>(db: &Db, sql: &str) -> Vec<T>
where
    T: Send
        + Unpin
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    match db {
        Db::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
    }
}

/// Asks `check` every 100 ms until it answers `Ok`, and gives that answer; once `timeout` has
/// passed, fails the test with its last `Err` (what it saw instead).
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(done) => return done,
            Err(seen) => assert!(std::time::Instant::now() < deadline, "after {timeout:?}: {seen}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (20 s at most) until `sql`, one count, reaches `n`.
pub async fn until_count(db: &Db, sql: &str, n: i64) {
    eventually(Duration::from_secs(20), || async move {
        let found: Vec<(i64,)> = rows(db, sql).await;
        if found[0].0 >= n {
            Ok(())
        } else {
            Err(format!("{sql}: {} of {n}", found[0].0))
        }
    })
    .await
}

/// A running localstripe (the third-party Stripe emulator, installed by `make test-tools` into
/// `target/localstripe`), bound to 127.0.0.1 without a state file; killed when dropped.
pub struct Localstripe {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Localstripe {
    pub async fn start() -> Localstripe {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace");
        let python = std::env::var("LOCALSTRIPE_PYTHON")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| root.join("target/localstripe/bin/python"));
        assert!(
            python.exists(),
            "{} is missing: run `make test-tools` (it installs localstripe)",
            python.display()
        );
        let mut child = Command::new(python)
            .arg(root.join("tests/localstripe/serve.py"))
            .arg("0")
            .kill_on_drop(true)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start localstripe");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("localstripe printed its address within 30 s")
            .expect("read stdout")
            .expect("a line");
        let base = line.strip_prefix("localstripe listening on ").expect("the address line").to_owned();
        Localstripe { child, base }
    }
}

/// Charges `user` again for `invoice`, as an old system would: straight at the provider, with
/// a key of its own and the invoice's metadata. The payment intent's id.
pub async fn charge_outside(
    db: &Db,
    sim: &PspSim,
    (invoice, user, amount): (i64, &str, i64),
    week: &str,
    key: &str,
) -> String {
    let (customer, method) = db.provider_customer(user).await.unwrap().unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/payment_intents", sim.base))
        .bearer_auth(SIM_KEY)
        .header("Idempotency-Key", key)
        .form(&[
            ("amount", amount.to_string()),
            ("currency", "usd".into()),
            ("customer", customer),
            ("payment_method", method),
            ("confirm", "true".into()),
            ("off_session", "true".into()),
            ("metadata[invoice_id]", invoice.to_string()),
            ("metadata[user_id]", user.to_owned()),
            ("metadata[week]", week.to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let intent: serde_json::Value = response.json().await.unwrap();
    intent["id"].as_str().unwrap().to_owned()
}

/// Moves every charge and transfer attempt's start `hours` into the past: the product's clock
/// moves on with the simulator's (`POST /sim/clock`).
pub async fn age_attempts(db: &Db, hours: i64) {
    for table in ["charge_attempts", "transfer_attempts"] {
        let rows: Vec<(i64, chrono::DateTime<chrono::Utc>)> =
            rows(db, &format!("SELECT id, started_at FROM {table}")).await;
        for (id, started_at) in rows {
            let aged = started_at - chrono::Duration::hours(hours);
            let sql = format!("UPDATE {table} SET started_at = $1 WHERE id = $2");
            match db {
                Db::Sqlite(p) => sqlx::query(&sql).bind(aged).bind(id).execute(p).await.map(|_| ()),
                Db::Postgres(p) => sqlx::query(&sql).bind(aged).bind(id).execute(p).await.map(|_| ()),
            }
            .unwrap();
        }
    }
}

/// The simulator's movements of `kind` (`charge`, `transfer`, `refund`) by the metadata key
/// `by` (`invoice_id`, `payout_id`): their amounts, from its own ledger.
pub async fn ledger_by(sim: &PspSim, kind: &str, by: &str) -> std::collections::BTreeMap<i64, Vec<i64>> {
    let mut found: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for e in sim.ledger().await {
        if e["kind"] == kind {
            let id = e["metadata"][by].as_str().unwrap().parse().unwrap();
            found.entry(id).or_default().push(e["amount"].as_i64().unwrap());
        }
    }
    found
}

/// Adds users with these ids (named "<id> Example", no contact details, English).
pub async fn add_users(db: &Db, ids: &[&str]) {
    let users: Vec<server::db::rides::NewUser> = ids
        .iter()
        .map(|id| server::db::rides::NewUser {
            id: (*id).into(),
            name: format!("{id} Example"),
            email: None,
            phone: None,
            language: "en".into(),
            provider: Default::default(),
        })
        .collect();
    db.add_users(&users).await.unwrap();
}
