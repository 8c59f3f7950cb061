fn main() -> std::process::ExitCode {
    agentgate::run()
}
