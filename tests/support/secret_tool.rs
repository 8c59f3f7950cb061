//! Shared by every test crate that checks the real keychain (core's `it`, the
//! CLI's `e2e`, the desktop tests), through `#[path]`: it is not a test target.

/// Every agentgate item in the keychain as secret-tool (a separate Secret Service
/// client) reads it. `search --all` lists the matching items and then reads them
/// one by one, so an item a concurrent test deletes in between fails the whole
/// search ("No such secret item"); that race is retried.
pub fn secret_tool_listing() -> String {
    let mut listing = String::new();
    for _ in 0..20 {
        let out = std::process::Command::new("secret-tool")
            .args(["search", "--all", "service", "agentgate"])
            .output()
            .expect("secret-tool is installed by the test script");
        listing = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if !listing.contains("No such secret item") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    listing
}
