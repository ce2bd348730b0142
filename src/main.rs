fn main() {
    std::process::exit(stxd::cli::main());
}
