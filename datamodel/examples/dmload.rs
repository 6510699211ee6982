//! Loads data model files and prints a summary line per model: `dmload FILE…` (or with no
//! argument, the built-in models). Used by benches/compare_bbfreport.sh.

use std::path::Path;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let t = Instant::now();
    let mut reg = if args.is_empty() {
        match datamodel::Registry::builtin() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    } else {
        datamodel::Registry::new()
    };
    let mut failed = false;
    for a in &args {
        if let Err(e) = reg.load_file(Path::new(a)) {
            eprintln!("error: {e}");
            failed = true;
        }
    }
    let elapsed = t.elapsed();
    for m in reg.models() {
        let s = m.summary();
        println!(
            "{}: {} objects ({} live, {} multi-instance), {} parameters ({} live), {} profiles [{}]",
            s.name,
            s.objects,
            s.live_objects,
            s.multi_instance,
            s.parameters,
            s.live_parameters,
            s.profiles,
            s.file.display()
        );
    }
    eprintln!("loaded in {:.1} ms", elapsed.as_secs_f64() * 1e3);
    if failed {
        std::process::exit(1);
    }
}
