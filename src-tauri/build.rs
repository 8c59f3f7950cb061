// tauri-build reads `tauri.conf.json` beside this crate (ARCHITECTURE.md says
// why the config lives here and not at the root).
fn main() {
    tauri_build::build();
}
