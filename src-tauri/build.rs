//! Runs Tauri's code generation. When the web UI has not been built
//! (`ui/web/dist/index.html` is missing) the app embeds the placeholder
//! page in `placeholder/` instead, so `cargo build` and `cargo test` work
//! without Node.js.

use std::path::Path;

const WEB_DIST: &str = "../ui/web/dist";
const PLACEHOLDER_CONFIG: &str = r#"{"build":{"frontendDist":"placeholder"}}"#;

fn main() {
    // Directory mtimes change when `web/` or `dist/` appear, so these
    // rerun the script once the web UI is built.
    for dir in ["../ui", "../ui/web", WEB_DIST] {
        if Path::new(dir).exists() {
            println!("cargo:rerun-if-changed={dir}");
        }
    }

    let web_built = Path::new(WEB_DIST).join("index.html").is_file();
    if !web_built && std::env::var_os("TAURI_CONFIG").is_none() {
        println!(
            "cargo:warning=`{WEB_DIST}/index.html` is missing, so the app embeds the placeholder page: run `npm run build` in `ui/web` for the web UI"
        );
        // SAFETY: the build script is single-threaded here, before
        // `tauri_build` starts any thread.
        unsafe { std::env::set_var("TAURI_CONFIG", PLACEHOLDER_CONFIG) };
        // `generate_context!` reads the same variable while compiling the crate.
        println!("cargo:rustc-env=TAURI_CONFIG={PLACEHOLDER_CONFIG}");
    }

    tauri_build::build();
}
