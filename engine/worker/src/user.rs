//! User and group lookup in a root filesystem's `/etc/passwd` and
//! `/etc/group`, for exec users and file owners.

use crate::paths::resolve_in_root;
use anyhow::{Context, Result, bail};
use std::path::Path;
use strata_llb::{ChownOpt, UserOpt};

/// A process identity resolved inside a root filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// Home directory from `/etc/passwd`, `/` when unknown.
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves an exec user of the form `user`, `uid`, `user:group` or
/// `uid:gid` (empty means root) against the files in `root`.
///
/// Supplementary groups are the primary group followed by the groups that
/// list the user as a member, added only when no group is given; `id` in a
/// BuildKit build prints the same list.
pub fn resolve_exec_user(root: &Path, spec: &str) -> Result<ResolvedUser> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let passwd = read_passwd(root)?;

    let entry = match user_part.parse::<u32>() {
        Ok(uid) => passwd.iter().find(|e| e.uid == uid),
        Err(_) => Some(passwd.iter().find(|e| e.name == user_part).with_context(|| {
            format!("User `{user_part}` not found in the image's `/etc/passwd`: add it or use a numeric uid")
        })?),
    };
    let uid = entry.map_or_else(|| user_part.parse().unwrap_or(0), |e| e.uid);
    let home = entry.map_or_else(|| "/".to_string(), |e| e.home.clone());

    let groups = read_group(root)?;
    let (gid, additional_gids) = match group_part {
        Some(group) => {
            let gid = lookup_group(&groups, group)?;
            (gid, vec![gid])
        }
        None => {
            let gid = entry.map_or(0, |e| e.gid);
            let mut additional = vec![gid];
            if let Some(entry) = entry {
                additional.extend(
                    groups
                        .iter()
                        .filter(|g| g.gid != gid && g.members.contains(&entry.name))
                        .map(|g| g.gid),
                );
            }
            (gid, additional)
        }
    };
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// Resolves a file owner. A user given without a group gets its primary
/// group when named, or the same id as group when numeric, as BuildKit does
/// for `COPY --chown`.
pub fn resolve_owner(root: &Path, owner: &ChownOpt) -> Result<(u32, u32)> {
    let (uid, default_gid) = match &owner.user {
        UserOpt::Id(uid) => (*uid, *uid),
        UserOpt::Name(name) => {
            let passwd = read_passwd(root)?;
            let entry = passwd.iter().find(|e| e.name == *name).with_context(|| {
                format!("User `{name}` not found in the destination's `/etc/passwd`: add it or use a numeric uid")
            })?;
            (entry.uid, entry.gid)
        }
    };
    let gid = match &owner.group {
        None => default_gid,
        Some(UserOpt::Id(gid)) => *gid,
        Some(UserOpt::Name(name)) => lookup_group(&read_group(root)?, name)?,
    };
    Ok((uid, gid))
}

fn lookup_group(groups: &[GroupEntry], group: &str) -> Result<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    match groups.iter().find(|g| g.name == group) {
        Some(entry) => Ok(entry.gid),
        None => bail!("Group `{group}` not found in `/etc/group`: add it or use a numeric gid"),
    }
}

/// Reads a file inside `root`, treating a missing file as empty.
fn read_in_root(root: &Path, path: &str) -> Result<String> {
    let host_path = resolve_in_root(root, path, true)?;
    match std::fs::read(&host_path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(error) => Err(error).with_context(|| format!("Failed to read `{path}`")),
    }
}

fn read_passwd(root: &Path) -> Result<Vec<PasswdEntry>> {
    let text = read_in_root(root, "/etc/passwd")?;
    Ok(text.lines().filter_map(parse_passwd_line).collect())
}

fn read_group(root: &Path) -> Result<Vec<GroupEntry>> {
    let text = read_in_root(root, "/etc/group")?;
    Ok(text.lines().filter_map(parse_group_line).collect())
}

/// Parses `name:password:uid:gid:gecos:home:shell`, skipping malformed
/// lines as glibc does.
fn parse_passwd_line(line: &str) -> Option<PasswdEntry> {
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 4 || line.starts_with('#') {
        return None;
    }
    Some(PasswdEntry {
        name: fields[0].to_string(),
        uid: fields[2].parse().ok()?,
        gid: fields[3].parse().ok()?,
        home: fields
            .get(5)
            .filter(|h| !h.is_empty())
            .unwrap_or(&"/")
            .to_string(),
    })
}

/// Parses `name:password:gid:member,member`.
fn parse_group_line(line: &str) -> Option<GroupEntry> {
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 3 || line.starts_with('#') {
        return None;
    }
    let members = fields.get(3).map_or_else(Vec::new, |m| {
        m.split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    });
    Some(GroupEntry {
        name: fields[0].to_string(),
        gid: fields[2].parse().ok()?,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with_users() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            root.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nstaff:x:50:app,other\n",
        )
        .unwrap();
        root
    }

    #[test]
    fn exec_user_forms() {
        let root = root_with_users();
        let app = resolve_exec_user(root.path(), "app").unwrap();
        assert_eq!((app.uid, app.gid), (1000, 1000));
        assert_eq!(app.additional_gids, vec![1000, 50]);
        assert_eq!(app.home, "/home/app");

        let numeric = resolve_exec_user(root.path(), "1000").unwrap();
        assert_eq!((numeric.uid, numeric.gid), (1000, 1000));
        let unknown = resolve_exec_user(root.path(), "4242").unwrap();
        assert_eq!((unknown.uid, unknown.gid), (4242, 0));
        let with_group = resolve_exec_user(root.path(), "app:staff").unwrap();
        assert_eq!((with_group.uid, with_group.gid), (1000, 50));
        assert_eq!(with_group.additional_gids, vec![50]);
        let ids = resolve_exec_user(root.path(), "7:8").unwrap();
        assert_eq!((ids.uid, ids.gid), (7, 8));
        let root_user = resolve_exec_user(root.path(), "").unwrap();
        assert_eq!((root_user.uid, root_user.gid), (0, 0));
    }

    #[test]
    fn missing_user_is_named() {
        let root = root_with_users();
        let error = resolve_exec_user(root.path(), "ghost").unwrap_err();
        assert!(error.to_string().contains("`ghost`"), "{error}");
        let error = resolve_exec_user(root.path(), "app:ghosts").unwrap_err();
        assert!(error.to_string().contains("`ghosts`"), "{error}");
    }

    #[test]
    fn owner_defaults() {
        let root = root_with_users();
        let by_name = ChownOpt {
            user: UserOpt::Name("app".into()),
            group: None,
        };
        assert_eq!(resolve_owner(root.path(), &by_name).unwrap(), (1000, 1000));
        let by_id = ChownOpt {
            user: UserOpt::Id(33),
            group: None,
        };
        assert_eq!(resolve_owner(root.path(), &by_id).unwrap(), (33, 33));
        let named_group = ChownOpt {
            user: UserOpt::Id(1),
            group: Some(UserOpt::Name("staff".into())),
        };
        assert_eq!(resolve_owner(root.path(), &named_group).unwrap(), (1, 50));
    }
}
