//! Trigger files: a file named after a job in `<state_dir>/control/<link>/`
//! asks the daemon to run that job on that link now (`stxd trigger` drops
//! one). A trigger is *taken* when its job is queued: given the private
//! name `.taken.<job>` in the same folder (hard link, unlink of the
//! trigger's name, folder synced). The taken name is removed once the job
//! ran to its end ([`job_ran`]); a taken name found at a listing whose job
//! is neither queued nor running was left by an earlier run (killed, or
//! stopped before the job ran or finished), and its job is queued again. So
//! no trigger is lost and none runs twice at once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::work::{Origin, Work};
use crate::config::{self, Config};
use crate::schedule::Job;

/// What the control folders' listings remember: the entries already
/// reported as refused, so each is logged once.
#[derive(Debug, Default)]
pub(super) struct Control {
    pub(super) reported: HashSet<PathBuf>,
}

impl Control {
    /// The names in a link's control folder (created, mode 0700, when
    /// missing), sorted; `None`, logged once, when it cannot be listed.
    fn list(&mut self, dir: &Path) -> Option<Vec<String>> {
        use std::os::unix::fs::DirBuilderExt;
        if let Err(e) = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            if self.reported.insert(dir.to_owned()) {
                error!(dir = %dir.display(), error = %e, "cannot create the control folder: trigger files of this link are not taken");
            }
            return None;
        }
        let mut names: Vec<String> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(e) => {
                if self.reported.insert(dir.to_owned()) {
                    error!(dir = %dir.display(), error = %e, "cannot list the control folder");
                }
                return None;
            }
        };
        names.sort();
        Some(names)
    }
}

/// The prefix of a trigger's private name while its job is queued or
/// running: a dot-name, never taken as a new trigger.
const TAKEN: &str = ".taken.";

/// A job's taken trigger, in its link's control folder.
fn taken_name(job: Job) -> String {
    format!("{TAKEN}{}", job.name())
}

/// Lists every link's control folder (creating it, mode 0700) and takes the
/// trigger files: each names a job to run now. Taking a trigger gives it a
/// private name in the same folder, `.taken.<job>` (hard link, unlink of the
/// trigger's name, folder synced), then queues its job; the worker removes
/// the taken name once the job ran to its end ([`job_ran`]). So a taken
/// trigger found here whose job is neither queued nor running was left by an
/// earlier run (killed, or stopped before the job ran or finished): its job
/// is queued again. A trigger whose job is queued or running (`busy`), or
/// taken already, stays for a later listing, so a job never overlaps itself
/// and no trigger is lost. An unknown name, or a job this config cannot run
/// on the link, is logged as an error and removed. Other dot-names are
/// ignored; symlinks, folders and other non-regular entries are refused
/// (logged once) and left alone.
pub(super) fn take_triggers(
    config: &Config,
    busy: &[(String, Job)],
    mut control: Control,
) -> (Control, Vec<(String, Job)>) {
    let mut taken = Vec::new();
    let mut seen = HashSet::new();
    for link in &config.links {
        let dir = config.control_dir(&link.name);
        let Some(names) = control.list(&dir) else {
            continue;
        };
        let mut folder = Folder {
            config,
            link,
            dir: &dir,
            busy,
            control: &mut control,
            seen: &mut seen,
        };
        let pending = folder.taken_before(&names, &mut taken);
        folder.take_new(&names, &pending, &mut taken);
    }
    control.reported.retain(|p| seen.contains(p) || p.is_dir());
    (control, taken)
}

/// One link's control folder during a listing.
struct Folder<'a> {
    config: &'a Config,
    link: &'a config::Link,
    dir: &'a Path,
    /// The jobs queued or running.
    busy: &'a [(String, Job)],
    control: &'a mut Control,
    /// The entries seen by this listing (the others are forgotten).
    seen: &'a mut HashSet<PathBuf>,
}

impl Folder<'_> {
    fn is_busy(&self, job: Job) -> bool {
        self.busy
            .iter()
            .any(|(l, j)| *l == self.link.name && *j == job)
    }

    /// Only regular files are triggers: anything else is reported once.
    fn regular(&mut self, path: &Path) -> bool {
        self.seen.insert(path.to_owned());
        let ok = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file());
        if !ok && self.control.reported.insert(path.to_owned()) {
            error!(file = %path.display(), link = %self.link.name,
                "not a trigger: only regular empty files are taken (symlinks and folders are refused); remove it");
        }
        ok
    }

    /// Queues again the jobs of the triggers taken before, which did not run
    /// to their end (unless queued or running now); returns every job taken
    /// in this folder.
    fn taken_before(&mut self, names: &[String], taken: &mut Vec<(String, Job)>) -> HashSet<Job> {
        let mut pending = HashSet::new();
        for name in names.iter().filter_map(|n| n.strip_prefix(TAKEN)) {
            let path = self.dir.join(format!("{TAKEN}{name}"));
            if !self.regular(&path) {
                continue;
            }
            let Some(job) = runnable(self.config, self.link, name, &path, self.dir) else {
                continue;
            };
            pending.insert(job);
            if !self.is_busy(job) {
                info!(link = %self.link.name, job = %job,
                    "taken trigger found: its job did not run to its end before the last stop; queued again");
                taken.push((self.link.name.clone(), job));
            }
        }
        pending
    }

    /// Takes the new triggers whose job is neither `pending` (taken
    /// already) nor queued or running.
    fn take_new(
        &mut self,
        names: &[String],
        pending: &HashSet<Job>,
        taken: &mut Vec<(String, Job)>,
    ) {
        let dir = self.dir;
        for name in names.iter().filter(|n| !n.starts_with('.')) {
            let path = dir.join(name);
            if !self.regular(&path) {
                continue;
            }
            let Some(job) = runnable(self.config, self.link, name, &path, dir) else {
                continue;
            };
            let taken_path = dir.join(taken_name(job));
            if pending.contains(&job) {
                // One file under both names: a take cut between its link and
                // its unlink. The taken name stands for it.
                if crate::transport::local::same_file(&path, &taken_path).unwrap_or(false) {
                    remove_trigger(&path, dir);
                } else {
                    debug!(file = %path.display(), "trigger waits: the same job is taken already");
                }
                continue;
            }
            if self.is_busy(job) {
                debug!(file = %path.display(), "trigger waits: the same job is queued or running");
                continue;
            }
            if take_trigger(&path, &taken_path, dir) {
                crate::failpoint::hit("trigger.taken");
                info!(link = %self.link.name, job = %job, "trigger taken: job queued");
                taken.push((self.link.name.clone(), job));
            }
        }
    }
}

/// The job a trigger file names, if this config can run it on `link`; else
/// the file is logged as an error and removed.
fn runnable(
    config: &Config,
    link: &config::Link,
    name: &str,
    path: &Path,
    dir: &Path,
) -> Option<Job> {
    let job = match name.parse::<Job>() {
        Ok(job) => job,
        Err(_) => {
            error!(file = %path.display(), link = %link.name, valid = %Job::names(),
                "unknown trigger file removed: name it after a job");
            remove_trigger(path, dir);
            return None;
        }
    };
    for &side in job.sides() {
        let code = link.side_code(side);
        if config.institution(code).is_none() {
            error!(file = %path.display(), link = %link.name, job = %job,
                "trigger removed: the job runs on the {side}'s side ({code}), which this config does not serve");
            remove_trigger(path, dir);
            return None;
        }
    }
    Some(job)
}

/// Takes a trigger durably: its taken name linked (never replacing a file;
/// renamed when the kernel refuses the link, for a trigger another account
/// dropped), its own name removed, the folder synced. `false`, logged, when it cannot
/// (the job is then not queued; the trigger stays for a later listing).
fn take_trigger(path: &Path, taken: &Path, dir: &Path) -> bool {
    use crate::transport::local::{self, Placed};
    let took = local::link_or_rename_new(path, taken).and_then(|placed| match placed {
        Placed::Linked | Placed::Same => {
            local::remove_name(path).and_then(|()| local::sync_dir(dir))
        }
        Placed::Other => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} holds something else", taken.display()),
        )),
    });
    match took {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            error!(file = %path.display(), error = %e,
                "cannot take the trigger file: its job is not run; check the control folder's permissions");
            false
        }
    }
}

/// Removes a trigger file (or a taken one) durably (the folder is synced);
/// `false`, logged, when it cannot be removed.
fn remove_trigger(path: &Path, dir: &Path) -> bool {
    match std::fs::remove_file(path).and_then(|()| crate::transport::local::sync_dir(dir)) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            error!(file = %path.display(), error = %e,
                "cannot remove the trigger file: check the control folder's permissions");
            false
        }
    }
}

/// A triggered job ran to its end (failed or not): its taken trigger is
/// removed.
pub(super) fn job_ran(config: &Config, link: &str, job: Job) {
    crate::failpoint::hit("trigger.job-done");
    let dir = config.control_dir(link);
    remove_trigger(&dir.join(taken_name(job)), &dir);
}

/// Says which triggered jobs will not run now (queued, or abandoned at
/// shutdown): their triggers stay taken, and the next start queues them
/// again ([`take_triggers`]). Nothing to write: a crash leaves them the same.
pub(super) fn left_taken<'w>(work: impl Iterator<Item = &'w Work>) {
    for w in work {
        if let Work::Job {
            link,
            job,
            origin: Origin::Trigger,
        } = w
        {
            info!(link = %link, job = %job, "triggered job not run: its trigger stays taken and the next start runs it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::tests::temp_config;
    use crate::format::Kind;

    fn control_names(config: &Config) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(config.control_dir("opera-tourism"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn taken_triggers_left_by_a_stop_or_a_kill_are_queued_again() {
        let dir = tempfile::tempdir().unwrap();
        let config = temp_config(dir.path());
        let control = config.control_dir("opera-tourism");
        std::fs::create_dir_all(&control).unwrap();
        // Two jobs taken by an earlier run; a third trigger whose take was
        // cut between its link and its unlink (one file, two names); a new
        // trigger of a job already taken waits.
        for name in [".taken.poll", ".taken.apply-seatplan", "poll"] {
            std::fs::write(control.join(name), "").unwrap();
        }
        std::fs::write(control.join("apply-catalogue"), "").unwrap();
        std::fs::hard_link(
            control.join("apply-catalogue"),
            control.join(".taken.apply-catalogue"),
        )
        .unwrap();
        let (ctl, mut taken) = take_triggers(&config, &[], Control::default());
        taken.sort();
        let link = "opera-tourism".to_owned();
        assert_eq!(
            taken,
            vec![
                (link.clone(), Job::Poll),
                (link.clone(), Job::Apply(Kind::Seatplan)),
                (link.clone(), Job::Apply(Kind::Catalogue)),
            ]
        );
        assert_eq!(
            control_names(&config),
            [
                ".taken.apply-catalogue",
                ".taken.apply-seatplan",
                ".taken.poll",
                "poll"
            ],
            "taken names stay until their job ran; the cut take is finished"
        );
        // While queued or running, they are not queued twice.
        let (_, again) = take_triggers(&config, &taken, ctl);
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn trigger_files_are_taken_once_and_bad_ones_refused() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let config = temp_config(dir.path());
        let control = config.control_dir("opera-tourism");
        std::fs::create_dir_all(&control).unwrap();
        for name in [
            "poll",
            "apply-catalogue",
            "export-catalogue",
            "reboot",
            ".hidden",
        ] {
            std::fs::write(control.join(name), "").unwrap();
        }
        std::fs::create_dir(control.join("export-sales")).unwrap();
        symlink("/etc/passwd", control.join("apply-seatplan")).unwrap();
        // apply-catalogue is already queued: its trigger waits.
        let busy = vec![("opera-tourism".to_owned(), Job::Apply(Kind::Catalogue))];
        let (ctl, mut taken) = take_triggers(&config, &busy, Control::default());
        taken.sort();
        assert_eq!(
            taken,
            vec![("opera-tourism".to_owned(), Job::Poll)],
            "export-catalogue is the manager's job, not served here"
        );
        let mut left: Vec<String> = std::fs::read_dir(&control)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".hidden",
                ".taken.poll",
                "apply-catalogue",
                "apply-seatplan",
                "export-sales"
            ],
            "poll taken, reboot and export-catalogue removed, the rest left"
        );
        assert_eq!(ctl.reported.len(), 2, "symlink and folder reported once");
        // Poll is queued now: its taken trigger is not queued twice.
        let busy = vec![("opera-tourism".to_owned(), Job::Poll)];
        let (_, taken) = take_triggers(&config, &busy, ctl);
        assert_eq!(
            taken,
            vec![("opera-tourism".to_owned(), Job::Apply(Kind::Catalogue))]
        );
        assert!(
            std::fs::metadata("/etc/passwd").is_ok(),
            "symlink target untouched"
        );
    }
}
