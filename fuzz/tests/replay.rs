//! Replays the fuzz corpora (`fuzz/corpus/<target>/`) and the crash regressions
//! (`fuzz/regressions/<target>/`) through every target: each input must run without a
//! panic, and every target must have a seed corpus.

use std::path::Path;

#[test]
fn every_corpus_replays() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, target) in fuzz::TARGETS {
        let corpus = fuzz::replay_dir(*target, &root.join("corpus").join(name));
        assert!(corpus > 0, "fuzz/corpus/{name} is empty");
        let regressions = fuzz::replay_dir(*target, &root.join("regressions").join(name));
        println!("{name}: {corpus} corpus inputs, {regressions} regressions replayed");
    }
}
