//! The AFL++ harness: `fuzz-target NAME` runs target NAME of [`fuzz::TARGETS`] on the inputs
//! afl-fuzz feeds it (see `scripts/fuzz.sh`).

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(&(_, target)) = fuzz::TARGETS.iter().find(|(n, _)| *n == name) else {
        let names: Vec<&str> = fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!("usage: fuzz-target TARGET (one of {})", names.join(", "));
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| {
        target(data);
    });
}
