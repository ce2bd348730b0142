fn main() -> std::process::ExitCode {
    stxd::cli::main()
}
