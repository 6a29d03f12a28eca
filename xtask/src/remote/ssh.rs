//! The connection to a host: `ssh` with the words to run there, `scp` for directories of this
//! machine, and the words that write files on the host from standard input (`dd`: no shell, no
//! redirection).

use crate::cmd::Cmd;
use crate::project::Project;

/// `ssh [-F CONFIG] OPTIONS HOST -- 'ARG' 'ARG'...`: never prompting, and sharing one
/// connection per host where it can (ControlMaster, its socket in $HOME/.ssh).
pub fn ssh<S: AsRef<str>>(p: &Project, host: &str, remote: &[S]) -> Cmd {
    options(p, "ssh").args(&[host, "--"]).remote(remote)
}

/// `scp -q -r [OPTIONS] SOURCE... HOST:DEST`: files and directories of this machine (relative to
/// the checkout) copied to `dest` on the host (relative to the login's home), over the same
/// shared connection as `ssh`.
pub fn scp<S: AsRef<str>>(p: &Project, sources: &[S], host: &str, dest: &str) -> Cmd {
    options(p, "scp").args(&["-q", "-r"]).args(sources).arg(format!("{host}:{dest}"))
}

/// `ssh` for a program a person works with (a followed log, a shell): with a terminal on the
/// host when this one has one (`-t`: Ctrl-C reaches the program there), and this terminal's.
pub fn ssh_terminal<S: AsRef<str>>(p: &Project, host: &str, remote: &[S]) -> Cmd {
    let cmd = options(p, "ssh");
    let cmd = if p.facts.terminal { cmd.arg("-t") } else { cmd };
    cmd.args(&[host, "--"]).remote(remote).terminal(true)
}

/// `ssh` (or `scp`) and its options, up to the host.
fn options(p: &Project, program: &str) -> Cmd {
    let mut cmd = p.cmd(program);
    if !p.config.deploy.ssh_config.is_empty() {
        cmd = cmd.args(&["-F", &p.config.deploy.ssh_config]);
    }
    // A dead connection is noticed within 15 s, not when TCP gives up.
    cmd = cmd.args(&["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5"]);
    if let Some(dir) = &p.facts.ssh_sockets {
        let path = format!("ControlPath={}/rs-%C", dir.display());
        cmd = cmd.args(&["-o", "ControlMaster=auto", "-o", &path, "-o", "ControlPersist=60"]);
    }
    cmd
}

/// Writes standard input to `path` on the host, replacing it.
pub fn write_file(path: &str) -> Vec<String> {
    words(&["dd", &format!("of={path}"), "status=none"])
}

/// Appends standard input to `path` on the host.
pub fn append_file(path: &str) -> Vec<String> {
    words(&["dd", &format!("of={path}"), "oflag=append", "conv=notrunc", "status=none"])
}

/// Words as owned strings.
pub fn words(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_never_prompts_shares_one_connection_and_quotes_every_remote_word() {
        let p = crate::project::fixture();
        let cmd = ssh(&p, "recordsponge", &["cat", "a b"]);
        assert_eq!(cmd.program, "ssh");
        assert_eq!(
            cmd.argv(),
            [
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "ServerAliveInterval=5",
                "-o",
                "ControlMaster=auto",
                "-o",
                "ControlPath=/home/dev/.ssh/rs-%C",
                "-o",
                "ControlPersist=60",
                "recordsponge",
                "--",
                "cat 'a b'"
            ]
        );
        let mut p = p;
        p.config.deploy.ssh_config = "/tmp/fleet/ssh_config".into();
        p.facts.ssh_sockets = None;
        let args = ssh(&p, "h", &["true"]).argv();
        assert_eq!(args[..2], ["-F", "/tmp/fleet/ssh_config"]);
        assert!(!args.iter().any(|a| a.starts_with("Control")), "{args:?}");
    }

    #[test]
    fn scp_copies_with_ssh_s_options_and_connection() {
        let p = crate::project::fixture();
        let cmd = scp(&p, &["config/nginx", "keys.pub"], "root@h", "setup/");
        assert_eq!(cmd.program, "scp");
        let ssh_options = &ssh(&p, "h", &["true"]).args[..12];
        assert_eq!(cmd.args[..12], *ssh_options);
        assert_eq!(cmd.args[12..], ["-q", "-r", "config/nginx", "keys.pub", "root@h:setup/"]);
    }

    #[test]
    fn a_person_s_program_gets_a_terminal_on_the_host_only_when_there_is_one_here() {
        let mut p = crate::project::fixture();
        let plain = ssh_terminal(&p, "h", &["docker", "logs", "x"]);
        assert!(plain.terminal && !plain.args.contains(&"-t".to_string()), "{:?}", plain.args);
        p.facts.terminal = true;
        let args = ssh_terminal(&p, "h", &["docker", "logs", "x"]).args;
        assert_eq!(args[args.len() - 3..], ["-t", "h", "--"]);
    }

    #[test]
    fn files_are_written_and_appended_by_dd_from_stdin() {
        assert_eq!(write_file("/etc/x.conf"), ["dd", "of=/etc/x.conf", "status=none"]);
        assert_eq!(append_file("/var/l.log"), ["dd", "of=/var/l.log", "oflag=append", "conv=notrunc", "status=none"]);
    }
}
