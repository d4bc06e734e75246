//! The dashboard's compiled assets under `/pkg`: the WebAssembly, its JavaScript glue and the
//! stylesheet.
//!
//! `scripts/publish-assets.mjs` runs after `cargo leptos build`: it renames the three files after
//! their content (`billing.<hash>.wasm`, `.js`, `.css`), writes brotli and gzip copies beside
//! them, and records the name in `pkg/assets.json`. A browser keeps such a file for a year
//! without asking again (`immutable`): a new build has a new name, which the next page's HTML
//! (always revalidated) points to. A site built without the script (`cargo leptos watch`) keeps
//! the plain `billing.*` names, revalidated on every visit.

use std::path::Path;

use axum::extract::Request;
use axum::http::header::{HeaderValue, CACHE_CONTROL};
use axum::middleware::Next;
use axum::response::Response;

/// The name the build gives the bundle when nothing renames it.
pub const PLAIN_NAME: &str = "billing";

/// The file `scripts/publish-assets.mjs` writes in `pkg/`.
const MANIFEST: &str = "assets.json";

/// A year: a content-named file never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// A plain name changes content with each build: revalidated (`Last-Modified` makes it a 304).
const REVALIDATE: &str = "no-cache";

#[derive(serde::Deserialize)]
struct Manifest {
    bundle: String,
}

/// The bundle's file name without extension, `billing.<hash>` as `pkg/assets.json` names it, or
/// `billing` when the site was built without `scripts/publish-assets.mjs` (or its files are gone).
pub fn bundle_name(site_root: &str) -> String {
    let pkg = Path::new(site_root).join("pkg");
    let named = std::fs::read(pkg.join(MANIFEST))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Manifest>(&bytes).ok())
        .map(|manifest| manifest.bundle)
        .filter(|bundle| is_content_name(bundle));
    match named {
        Some(bundle) if pkg.join(format!("{bundle}.wasm")).exists() => bundle,
        Some(bundle) => {
            tracing::warn!(%bundle, "pkg/assets.json names a bundle whose files are missing: the plain names are used");
            PLAIN_NAME.into()
        }
        None => PLAIN_NAME.into(),
    }
}

/// `billing.` followed by the hexadecimal hash the script writes, and nothing else.
fn is_content_name(bundle: &str) -> bool {
    bundle
        .strip_prefix("billing.")
        .is_some_and(|hash| hash.len() >= 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `/pkg` service: a file's brotli or gzip copy when the browser takes it, else the file.
pub fn service(site_root: &str, bundle: &str) -> axum::routing::MethodRouter {
    let dir = Path::new(site_root).join("pkg");
    drop_stale_copies(&dir);
    let files = tower_http::services::ServeDir::new(&dir).precompressed_br().precompressed_gzip();
    let immutable_prefix = (bundle != PLAIN_NAME).then(|| format!("/{bundle}."));
    let cache = axum::middleware::from_fn(move |request: Request, next: Next| {
        let immutable =
            immutable_prefix.as_deref().is_some_and(|prefix| request.uri().path().starts_with(prefix));
        async move { with_cache_policy(next.run(request).await, immutable) }
    });
    axum::routing::get_service(files).layer(cache)
}

fn with_cache_policy(mut response: Response, immutable: bool) -> Response {
    let policy = if immutable && response.status().is_success() { IMMUTABLE } else { REVALIDATE };
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static(policy));
    response
}

/// Removes a compressed copy older than its asset (the assets were built again without
/// `scripts/publish-assets.mjs`): sent, it would be an old dashboard; without it, the asset goes
/// out whole.
fn drop_stale_copies(dir: &Path) {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let copy = entry.path();
        let Some(ext) = copy.extension().and_then(|e| e.to_str()).filter(|e| matches!(*e, "br" | "gz"))
        else {
            continue;
        };
        let source = copy.with_extension("");
        let stale = match (modified(&copy), modified(&source)) {
            (Some(copied), Some(built)) => copied < built,
            (_, None) => true,
            _ => false,
        };
        if stale {
            tracing::warn!(copy = %copy.display(), "a {ext} copy is older than its asset: removed, the asset goes out uncompressed");
            let _ = std::fs::remove_file(&copy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("pkg")).unwrap();
        for (name, body) in files {
            std::fs::write(root.path().join("pkg").join(name), body).unwrap();
        }
        root
    }

    #[test]
    fn the_manifest_names_the_bundle_when_its_files_are_there() {
        let root = site(&[
            ("assets.json", r#"{"bundle":"billing.0123456789abcdef"}"#),
            ("billing.0123456789abcdef.wasm", ""),
        ]);
        assert_eq!(bundle_name(root.path().to_str().unwrap()), "billing.0123456789abcdef");
    }

    #[test]
    fn without_a_usable_manifest_the_plain_name_is_used() {
        let missing_files = site(&[("assets.json", r#"{"bundle":"billing.0123456789abcdef"}"#)]);
        assert_eq!(bundle_name(missing_files.path().to_str().unwrap()), PLAIN_NAME);
        let none = site(&[("billing.wasm", "")]);
        assert_eq!(bundle_name(none.path().to_str().unwrap()), PLAIN_NAME);
        // A name that could step outside pkg/ or is not a hash is refused.
        let odd = site(&[("assets.json", r#"{"bundle":"../billing"}"#), ("../billing.wasm", "")]);
        assert_eq!(bundle_name(odd.path().to_str().unwrap()), PLAIN_NAME);
        let garbage = site(&[("assets.json", "not json"), ("billing.wasm", "")]);
        assert_eq!(bundle_name(garbage.path().to_str().unwrap()), PLAIN_NAME);
    }
}
