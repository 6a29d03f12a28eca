//! Two checkouts sharing one cargo target directory (a `build.target-dir`, or git worktrees)
//! each act on their own tree: the repository root is found when the command runs, never
//! baked into the binary. Builds the xtask once into a scratch target directory.

use std::path::{Path, PathBuf};

use xshell::{cmd, Shell};

/// A copy of what a checkout needs to build and plan: the workspace (the tool and its test rig), the
/// configuration.
fn checkout(root: &Path, dest: &Path) {
    for rel in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo",
        "xtask/Cargo.toml",
        "xtask/src",
        "xtask/testbed/Cargo.toml",
        "xtask/testbed/src",
        "config",
    ] {
        let from = root.join(rel);
        for entry in walkdir::WalkDir::new(&from) {
            let entry = entry.unwrap();
            let inside = entry.path().strip_prefix(&from).unwrap();
            let to = if inside.as_os_str().is_empty() { dest.join(rel) } else { dest.join(rel).join(inside) };
            if entry.file_type().is_dir() {
                std::fs::create_dir_all(&to).unwrap();
            } else {
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(entry.path(), &to).unwrap();
            }
        }
    }
}

#[test]
fn two_checkouts_sharing_a_target_directory_each_act_on_their_own_tree() {
    let root = xtask::root().unwrap();
    let sh = Shell::new().unwrap();
    // Removed when dropped, also when an assertion fails.
    let temp = sh.create_temp_dir().unwrap();
    let scratch = temp.path();
    let (a, b, target): (PathBuf, PathBuf, PathBuf) = (scratch.join("a"), scratch.join("b"), scratch.join("target"));
    checkout(&root, &a);
    checkout(&root, &b);

    sh.set_var("CARGO_TARGET_DIR", &target);
    let plan_in = |dir: &Path| -> String {
        sh.change_dir(dir);
        cmd!(sh, "cargo xtask --dry-run up").env_remove("RS_CONFIG").read().unwrap()
    };
    // Built in A, then run in B without a rebuild: B's plan names B's files.
    let in_a = plan_in(&a);
    let in_b = plan_in(&b);
    let compose = |dir: &Path| format!("the compose file exists: {}", dir.join("config/compose.yml").display());
    assert!(in_a.contains(&compose(&a)), "{in_a}");
    assert!(in_b.contains(&compose(&b)), "checkout B acted on another tree:\n{in_b}");

    // The binary run directly (no cargo) finds the checkout it is run in.
    let bin = target.join("debug").join(format!("xtask{}", std::env::consts::EXE_SUFFIX));
    sh.change_dir(b.join("xtask/src"));
    let direct =
        cmd!(sh, "{bin} --dry-run up").env_remove("CARGO_MANIFEST_DIR").env_remove("RS_CONFIG").read().unwrap();
    assert!(direct.contains(&compose(&b)), "{direct}");
    sh.change_dir(scratch);
    let outside = cmd!(sh, "{bin} --dry-run up")
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("RS_CONFIG")
        .ignore_status()
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&outside.stderr);
    assert!(!outside.status.success() && err.contains("is not inside a RecordSponge checkout"), "{err}");
}
