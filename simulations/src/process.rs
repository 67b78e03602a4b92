//! Processes the bench starts: spawning a server and reading where it listens, stopping it
//! whatever happens, and reading its memory and CPU time from `/proc` (Linux).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long a stopped process may take to exit after SIGTERM before it gets SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// A process started by the bench; stopped (SIGTERM, then SIGKILL after [`STOP_GRACE`]) on
/// drop, and killed by the kernel if the bench dies first.
pub struct ChildGuard(Child);

impl ChildGuard {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.0.kill().context("SIGKILL")?;
        self.0.wait().context("reaping a killed process")?;
        Ok(())
    }

    fn exited(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(Some(_)))
    }

    fn terminate(&mut self) {
        if self.exited() {
            return;
        }
        // SAFETY: signalling our own child, which has not been reaped (checked just above).
        unsafe {
            libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM);
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        stop_all(std::slice::from_mut(self), STOP_GRACE);
    }
}

/// Sends SIGTERM to every process at once, waits up to `grace` for all of them, then
/// SIGKILLs and reaps the rest. Processes stop in parallel, so a cluster stops in one grace.
pub fn stop_all(children: &mut [ChildGuard], grace: Duration) {
    for child in children.iter_mut() {
        child.terminate();
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && children.iter_mut().any(|child| !child.exited()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for child in children.iter_mut() {
        if !child.exited() {
            let _ = child.0.kill();
            let _ = child.0.wait();
        }
    }
}

/// Spawns `command` (its stderr goes to ours) and returns it with the `http://` URL from the
/// first line it prints.
///
/// The child gets SIGKILL from the kernel when the thread that spawned it ends
/// (`PR_SET_PDEATHSIG`), so nothing outlives a bench that is itself killed; spawn from a
/// thread that lives as long as the child should (the main thread, a runtime worker), never
/// from a short-lived blocking-pool thread.
pub fn spawn_and_read_url(command: Command) -> anyhow::Result<(ChildGuard, String)> {
    spawn_and_read_url_logging(command, Stdio::inherit())
}

/// [`spawn_and_read_url`], with the child's stderr going to `stderr` (a log file, say).
pub fn spawn_and_read_url_logging(
    mut command: Command,
    stderr: Stdio,
) -> anyhow::Result<(ChildGuard, String)> {
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let stdout = child.stdout.take().context("child stdout")?;
    let guard = ChildGuard(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let Some(url) = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
    else {
        bail!("the server did not print where it listens: {line:?}");
    };
    Ok((guard, url.to_owned()))
}

/// The sibling binary `name` of the running executable (both are built into one target dir).
pub fn sibling_binary(name: &str) -> PathBuf {
    let mut path = std::env::current_exe().unwrap_or_default();
    path.set_file_name(name);
    path
}

/// Resident memory of process `pid` in bytes.
pub fn resident_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?;
    Ok(kib * 1024)
}

/// CPU time (user + system, every thread) process `pid` has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = cpu_ticks(&stat).context("unexpected /proc/<pid>/stat format")?;
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    anyhow::ensure!(per_second > 0, "no clock tick rate");
    Ok(ticks as f64 / per_second as f64)
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line, in clock ticks. The command
/// name (field 2) is in parentheses and may hold spaces, so fields are counted after its `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// utime and stime are read from the right fields, even with spaces in the name.
    #[test]
    fn reads_cpu_ticks_after_the_command_name() {
        let stat = "4242 (list wire) S 1 4242 4242 0 -1 4194560 1000 0 0 0 123 45 0 0 20 0 9";
        assert_eq!(cpu_ticks(stat), Some(168));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    /// This process's own CPU time is readable and does not go backwards.
    #[test]
    fn own_cpu_time_is_monotonic() {
        let pid = std::process::id();
        let before = cpu_seconds(pid).unwrap();
        let mut spin = 0u64;
        for value in 0..2_000_000u64 {
            spin = spin.wrapping_add(value * value);
        }
        assert!(spin > 0);
        assert!(cpu_seconds(pid).unwrap() >= before);
    }
}
