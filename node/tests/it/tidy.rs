//! Rules of STYLE.md that a test can check: every Rust file of the workspace stays small enough
//! to read in one sitting, and shipped code carries no unfinished markers.

use std::path::{Path, PathBuf};

const FILE_LINES_MAX: usize = 500;

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.ends_with("target") {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// Files stay under the size limit and free of todo!/unimplemented! outside tests.
#[test]
fn files_are_small_and_finished() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    for crate_dir in ["node", "storage", "gateway", "cluster", "simulations"] {
        rust_files(&workspace.join(crate_dir), &mut files);
    }
    assert!(files.len() > 20, "found the sources");
    let unfinished = ["todo!(", "unimplemented!("];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines = text.lines().count();
        assert!(
            lines <= FILE_LINES_MAX,
            "{} has {lines} lines (limit {FILE_LINES_MAX}); split it",
            file.display()
        );
        let is_test = file.components().any(|part| part.as_os_str() == "tests");
        if !is_test && !file.ends_with("tidy.rs") {
            for marker in unfinished {
                assert!(
                    !text.contains(marker),
                    "{} contains {marker}",
                    file.display()
                );
            }
        }
    }
}
