//! File operations done in-process with walkdir, so they work the same on Linux, macOS and
//! Windows: no `find | xargs rm`, no rsync.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use walkdir::WalkDir;

/// Removes, under each of `under`, every entry named in `names` and every file with one of
/// `extensions`, without descending into directories named in `skip`. Returns what it removed.
pub fn clean(under: &[PathBuf], names: &[String], extensions: &[String], skip: &[String]) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for dir in under.iter().filter(|d| d.is_dir()) {
        let mut walk = WalkDir::new(dir).min_depth(1).into_iter();
        while let Some(entry) = walk.next() {
            let entry = entry.with_context(|| format!("cannot read under {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy();
            let is_dir = entry.file_type().is_dir();
            if is_dir && skip.iter().any(|s| *s == name) {
                walk.skip_current_dir();
                continue;
            }
            let by_name = names.iter().any(|n| *n == name);
            let by_ext = !is_dir
                && entry.path().extension().is_some_and(|e| extensions.iter().any(|x| *x == e.to_string_lossy()));
            if !(by_name || by_ext) {
                continue;
            }
            if is_dir {
                walk.skip_current_dir();
                std::fs::remove_dir_all(entry.path())
            } else {
                std::fs::remove_file(entry.path())
            }
            .with_context(|| format!("cannot remove {}", entry.path().display()))?;
            removed.push(entry.into_path());
        }
    }
    Ok(removed)
}

/// Removes a directory tree if it exists.
pub fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Removes a file if it exists.
pub fn remove_file(file: &Path) -> Result<()> {
    match std::fs::remove_file(file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", file.display()))
        }
        _ => Ok(()),
    }
}

/// Makes `dest` anew: each source (a file or a directory) is copied to its path inside `dest`,
/// leaving out every entry whose name is in `exclude`.
pub fn assemble(dest: &Path, sources: &[(PathBuf, PathBuf)], exclude: &[String]) -> Result<()> {
    remove_dir(dest)?;
    std::fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    for (src, inside) in sources {
        let target = dest.join(inside);
        let walk = WalkDir::new(src)
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !exclude.iter().any(|x| *x == e.file_name().to_string_lossy()));
        for entry in walk {
            let entry =
                entry.with_context(|| format!("cannot read {}: it is part of the build context", src.display()))?;
            let rel = entry.path().strip_prefix(src).expect("walkdir yields paths under its root");
            let to = if rel.as_os_str().is_empty() { target.clone() } else { target.join(rel) };
            if entry.file_type().is_dir() {
                std::fs::create_dir_all(&to).with_context(|| format!("cannot create {}", to.display()))?;
            } else {
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
                }
                std::fs::copy(entry.path(), &to)
                    .with_context(|| format!("cannot copy {} to {}", entry.path().display(), to.display()))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path, files: &[&str]) {
        for f in files {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-fsops-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn clean_removes_caches_and_nothing_else() {
        let root = temp("clean");
        tree(
            &root,
            &[
                "src/app/__pycache__/x.cpython-311.pyc",
                "src/app/mod.py",
                "src/app/stale.pyc",
                "src/.mypy_cache/a.json",
                "src/node_modules/pkg/__pycache__/keep.pyc",
                "src/notes.pyc.txt",
            ],
        );
        let removed = clean(
            &[root.join("src")],
            &strings(&["__pycache__", ".mypy_cache"]),
            &strings(&["pyc"]),
            &strings(&["node_modules"]),
        )
        .unwrap();
        assert_eq!(removed.len(), 3, "{removed:?}");
        assert!(!root.join("src/app/__pycache__").exists());
        assert!(!root.join("src/app/stale.pyc").exists());
        assert!(!root.join("src/.mypy_cache").exists());
        assert!(root.join("src/app/mod.py").is_file());
        assert!(root.join("src/node_modules/pkg/__pycache__/keep.pyc").is_file());
        assert!(root.join("src/notes.pyc.txt").is_file());
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn assemble_copies_sources_without_excluded_entries() {
        let root = temp("assemble");
        tree(
            &root,
            &[
                "backend/app.py",
                "backend/logs/today.log",
                "backend/pkg/flask_session/s1",
                "backend/pkg/mod.py",
                "build/index.html",
                "Dockerfile",
            ],
        );
        let dest = root.join("ctx");
        tree(&dest, &["stale-file"]);
        assemble(
            &dest,
            &[
                (root.join("backend"), PathBuf::from("backend")),
                (root.join("build"), PathBuf::from("frontend/build")),
                (root.join("Dockerfile"), PathBuf::from("Dockerfile")),
            ],
            &strings(&["logs", "flask_session"]),
        )
        .unwrap();
        assert!(dest.join("backend/app.py").is_file());
        assert!(dest.join("backend/pkg/mod.py").is_file());
        assert!(dest.join("frontend/build/index.html").is_file());
        assert_eq!(std::fs::read_to_string(dest.join("Dockerfile")).unwrap(), "Dockerfile");
        assert!(!dest.join("backend/logs").exists());
        assert!(!dest.join("backend/pkg/flask_session").exists());
        assert!(!dest.join("stale-file").exists());
        std::fs::remove_dir_all(root).unwrap();
    }
}
