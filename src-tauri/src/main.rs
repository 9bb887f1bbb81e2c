// Without this a release build on Windows opens a console window too.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    strata_workbench::run();
}
