//! `rvsip`: see the library docs.

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let code = rvsip::run(
        &args,
        std::env::var_os(rvs_api::SOCKET_ENV),
        &mut out,
        &mut err,
    );
    let _ = out.flush();
    std::process::exit(code);
}
