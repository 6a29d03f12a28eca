//! POSIX shell quoting. ssh joins its arguments with spaces into one string that the remote
//! shell parses again, so every argument of a remote command is quoted here, one by one.
//! The same quoting renders plans as copy-pasteable command lines.

/// Quotes one argument so that a POSIX shell reads it back as exactly one word, unchanged.
pub fn sh(arg: &str) -> String {
    let safe = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Quotes every argument and joins them with spaces: one string for a remote shell.
pub fn sh_join<S: AsRef<str>>(args: &[S]) -> String {
    args.iter().map(|a| sh(a.as_ref())).collect::<Vec<_>>().join(" ")
}
