//! COPY, ADD and WORKDIR: the instructions that become file ops.

use super::Failure;
use super::dispatch::{Dispatcher, StageState, chomp, instruction_text};
use super::graph::{Graph, PendingInput, State};
use super::stages::{find_stage, named_context, state_of};
use crate::ast::{Heredoc, Node};
use crate::instructions::{Copy, CopySource};
use std::collections::BTreeMap;
use strata_llb::image::History;
use strata_llb::{ChownOpt, CopyAction, FileAction, FileOp, MergeOp, Op, SourceOp, UserOpt};

/// The filesystem a copy reads its sources from.
enum Origin {
    Context,
    State(State),
}

impl Dispatcher<'_> {
    pub(crate) async fn dispatch_copy(
        &mut self,
        state: &mut StageState,
        node: &Node,
        copy: &Copy,
        states: &BTreeMap<usize, StageState>,
        graph: &mut Graph,
    ) -> Result<(), Failure> {
        let keyword = if copy.add { "ADD" } else { "COPY" };
        let origin = match &copy.from {
            None => Origin::Context,
            Some(from) => match (
                named_context(self.options, from),
                find_stage(self.stages, from),
            ) {
                (Some(context), _) => Origin::State(
                    self.named_context_state(state, node, context, graph)
                        .await?,
                ),
                (None, Some(index)) => Origin::State(state_of(states, index)),
                (None, None) => Origin::State(self.image_source(state, node, from, graph).await?),
            },
        };
        let owner = match &copy.chown {
            Some(text) => Some(parse_owner(node, &self.expand(state, node, text)?)?),
            None => None,
        };
        let (mode, mode_text) = match &copy.chmod {
            Some(text) => parse_chmod(node, &self.expand(state, node, text)?)?,
            None => (None, None),
        };
        let excludes = copy
            .excludes
            .iter()
            .map(|pattern| self.expand(state, node, pattern))
            .collect::<Result<Vec<_>, _>>()?;
        let dest_written = self.expand(state, node, &copy.dest)?;
        let dest = destination(state, &dest_written, copy.sources.len() > 1);

        let mut inputs = Vec::new();
        // A linked copy starts from scratch so that its layer does not
        // depend on the base; a merge puts it on top afterwards.
        let base = match state.fs {
            State::Vertex(i) if !copy.link => {
                inputs.push(PendingInput::Vertex(i));
                Some(0)
            }
            _ => None,
        };
        let input_of = |input: PendingInput, inputs: &mut Vec<PendingInput>| -> u32 {
            match inputs.iter().position(|i| *i == input) {
                Some(i) => i as u32,
                None => {
                    inputs.push(input);
                    inputs.len() as u32 - 1
                }
            }
        };

        let mut actions = Vec::new();
        let mut history_words = Vec::new();
        for source in &copy.sources {
            let path = match source {
                CopySource::Heredoc(heredoc) => {
                    history_words.push(format!("<<{}", heredoc.name));
                    let data = self.heredoc_data(state, node, heredoc)?;
                    let file = if dest.ends_with('/') {
                        format!("{dest}{}", heredoc.name)
                    } else {
                        dest.clone()
                    };
                    if mode_text.is_some() {
                        return Err(Failure::at(
                            node,
                            "Symbolic `--chmod` is not supported for heredoc sources: use an octal mode such as `0755`",
                        ));
                    }
                    push_mkfile(
                        &mut actions,
                        &file,
                        data,
                        mode.unwrap_or(0o644),
                        owner.clone(),
                    );
                    continue;
                }
                CopySource::Path(path) => self.expand(state, node, path)?,
            };
            history_words.push(path.clone());
            let is_git = is_git_url(&path);
            let is_url = is_git || path.starts_with("http://") || path.starts_with("https://");
            if is_url && !copy.add {
                return Err(Failure::at(node, "source can't be a URL for COPY"));
            }
            let mut action = if is_git {
                let source = self.git_source(state, node, &path, copy, graph);
                let index = input_of(source, &mut inputs);
                CopyAction::new(Some(index), "/", dest.clone())
            } else if is_url {
                let (source, file) = self.http_source(state, node, &path, copy, graph)?;
                let index = input_of(source, &mut inputs);
                let mut action = CopyAction::new(Some(index), format!("/{file}"), dest.clone());
                action.attempt_unpack = copy.unpack == Some(true);
                action
            } else {
                let src = source_path(&path, copy.parents);
                let input = match &origin {
                    Origin::Context => {
                        graph.read_context_path(&src);
                        Some(input_of(PendingInput::Context, &mut inputs))
                    }
                    Origin::State(State::Vertex(i)) => {
                        Some(input_of(PendingInput::Vertex(*i), &mut inputs))
                    }
                    Origin::State(State::Scratch) => None,
                };
                let mut action = CopyAction::new(input, src, dest.clone());
                action.attempt_unpack =
                    copy.add && copy.unpack != Some(false) && matches!(origin, Origin::Context);
                action
            };
            action.owner = owner.clone();
            action.mode = mode;
            action.mode_text = mode_text.clone();
            action.follow_symlink = true;
            action.dir_contents_only = true;
            action.create_dest_path = true;
            action.allow_wildcard = true;
            // NOTE: BuildKit sets this too. A wildcard that matches nothing is
            // fine next to other sources, and a missing plain path still fails.
            action.allow_empty_wildcard = true;
            action.exclude_patterns = excludes.clone();
            action.parents = copy.parents;
            actions.push(FileAction::Copy(action));
        }

        let description = self.describe(state, &instruction_text(node));
        let metadata = self.metadata(state, node, description);
        let op = Op::File(FileOp { base, actions });
        let copied = graph.add(op, inputs, metadata.clone(), Some(state.platform.clone()));
        state.fs = match (copy.link, state.fs, copied) {
            (true, State::Vertex(below), State::Vertex(above)) => {
                let merge = Op::Merge(MergeOp { inputs: vec![0, 1] });
                let inputs = vec![PendingInput::Vertex(below), PendingInput::Vertex(above)];
                graph.add(merge, inputs, metadata, Some(state.platform.clone()))
            }
            _ => copied,
        };
        state.config.history.push(History {
            created_by: Some(format!(
                "{keyword} {} {dest_written} # buildkit",
                history_words.join(" ")
            )),
            ..Default::default()
        });
        Ok(())
    }

    pub(crate) fn dispatch_workdir(
        &mut self,
        state: &mut StageState,
        node: &Node,
        path: &str,
        graph: &mut Graph,
    ) -> Result<(), Failure> {
        let written = self.expand(state, node, path)?;
        let current = state
            .config
            .config
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".into());
        let workdir = clean_path(&join(&current, &written));
        state.config.config.working_dir = Some(workdir.clone());
        if workdir == "/" {
            state.step += 1;
            state.config.history.push(History {
                created_by: Some(format!("WORKDIR {workdir}")),
                empty_layer: true,
                ..Default::default()
            });
            return Ok(());
        }
        let owner = match state.config.config.user.as_deref() {
            Some(user) if !user.is_empty() => Some(parse_owner(node, user)?),
            _ => None,
        };
        let mkdir = FileAction::Mkdir {
            path: workdir.clone(),
            mode: 0o755,
            make_parents: true,
            owner,
            timestamp: None,
        };
        let mut inputs = Vec::new();
        let base = match state.fs {
            State::Vertex(i) => {
                inputs.push(PendingInput::Vertex(i));
                Some(0)
            }
            State::Scratch => None,
        };
        let description = self.describe(state, &instruction_text(node));
        let metadata = self.metadata(state, node, description);
        let op = Op::File(FileOp {
            base,
            actions: vec![mkdir],
        });
        state.fs = graph.add(op, inputs, metadata, Some(state.platform.clone()));
        state.config.history.push(History {
            created_by: Some(format!("WORKDIR {workdir}")),
            ..Default::default()
        });
        Ok(())
    }

    /// Adds the source of `COPY --from=IMAGE`.
    pub(crate) async fn image_source(
        &mut self,
        state: &StageState,
        node: &Node,
        reference: &str,
        graph: &mut Graph,
    ) -> Result<State, Failure> {
        let image = self.resolve(node, reference, &state.platform).await?;
        let identifier = format!("docker-image://{}@{}", image.name, image.digest);
        let mut metadata = self.metadata(state, node, format!("{}@{}", image.name, image.digest));
        metadata.description = format!(
            "[{}] FROM {}@{}",
            state.stage_name, image.name, image.digest
        );
        let source = SourceOp {
            identifier,
            attrs: BTreeMap::new(),
        };
        Ok(graph.add(
            Op::Source(source),
            Vec::new(),
            metadata,
            Some(state.platform.clone()),
        ))
    }

    /// Adds the `https://` source of `ADD URL` and returns it with the file
    /// name the download is stored under.
    fn http_source(
        &self,
        state: &StageState,
        node: &Node,
        url: &str,
        copy: &Copy,
        graph: &mut Graph,
    ) -> Result<(PendingInput, String), Failure> {
        let path = url.split(['?', '#']).next().unwrap_or(url);
        let after_scheme = path.split_once("://").map_or(path, |(_, rest)| rest);
        let file = match after_scheme.split_once('/') {
            Some((_, tail)) => tail.rsplit('/').next().unwrap_or("").to_string(),
            None => String::new(),
        };
        // Without a name in the URL the engine names the file after the
        // response's `Content-Disposition`, and the copy takes whatever
        // single file the download holds.
        let mut attrs = BTreeMap::new();
        let file = if file.is_empty() {
            "*".to_string()
        } else {
            attrs.insert("http.filename".to_string(), file.clone());
            file
        };
        if let Some(checksum) = &copy.checksum {
            attrs.insert("http.checksum".into(), self.expand(state, node, checksum)?);
        }
        let metadata = self.metadata(state, node, format!("[{}] ADD {url}", state.stage_name));
        let source = SourceOp {
            identifier: url.to_string(),
            attrs,
        };
        let State::Vertex(index) = graph.add(Op::Source(source), Vec::new(), metadata, None) else {
            unreachable!("graph.add returns a vertex")
        };
        Ok((PendingInput::Vertex(index), file))
    }

    /// Adds the git source of `ADD REPO`: BuildKit's `git://` identifier
    /// with the remote as written in `git.fullurl`.
    fn git_source(
        &self,
        state: &StageState,
        node: &Node,
        url: &str,
        copy: &Copy,
        graph: &mut Graph,
    ) -> PendingInput {
        let (remote, fragment) = match url.split_once('#') {
            Some((remote, fragment)) => (remote, Some(fragment)),
            None => (url, None),
        };
        let bare = remote.split_once("://").map_or(remote, |(_, rest)| rest);
        let identifier = match fragment {
            Some(fragment) => format!("git://{bare}#{fragment}"),
            None => format!("git://{bare}"),
        };
        let mut attrs = BTreeMap::from([("git.fullurl".to_string(), remote.to_string())]);
        if copy.keep_git_dir == Some(true) {
            attrs.insert("git.keepgitdir".into(), "true".into());
        }
        let metadata = self.metadata(state, node, format!("[{}] ADD {url}", state.stage_name));
        let source = SourceOp { identifier, attrs };
        let State::Vertex(index) = graph.add(Op::Source(source), Vec::new(), metadata, None) else {
            unreachable!("graph.add returns a vertex")
        };
        PendingInput::Vertex(index)
    }

    /// Returns a COPY heredoc body: tabs stripped for `<<-`, and expanded
    /// unless the delimiter was quoted. Quotes in the body stay literal
    /// because they belong to the file, not to the Dockerfile.
    fn heredoc_data(
        &self,
        state: &StageState,
        node: &Node,
        heredoc: &Heredoc,
    ) -> Result<Vec<u8>, Failure> {
        let body = if heredoc.chomp {
            chomp(&heredoc.content)
        } else {
            heredoc.content.clone()
        };
        if !heredoc.expand {
            return Ok(body.into_bytes());
        }
        let lexer = self.lexer.clone().skip_process_quotes(true);
        let env = state
            .args
            .expansion_env(state.config.config.env.as_deref().unwrap_or_default());
        let expanded = lexer
            .process_word(&body, &env)
            .map_err(|e| Failure::at(node, e.to_string()))?;
        Ok(expanded.value.into_bytes())
    }
}

/// Whether an ADD source names a git repository, as BuildKit decides:
/// `git://`, `git@host:`, or an `http(s)://` URL whose path ends in `.git`.
fn is_git_url(text: &str) -> bool {
    let remote = text.split('#').next().unwrap_or(text);
    if remote.starts_with("git://") || remote.starts_with("git@") {
        return true;
    }
    (remote.starts_with("https://") || remote.starts_with("http://"))
        && remote.trim_end_matches('/').ends_with(".git")
}

fn push_mkfile(
    actions: &mut Vec<FileAction>,
    file: &str,
    data: Vec<u8>,
    mode: u32,
    owner: Option<ChownOpt>,
) {
    let parent = match file.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => file[..i].to_string(),
    };
    if parent != "/" {
        actions.push(FileAction::Mkdir {
            path: parent,
            mode: 0o755,
            make_parents: true,
            owner: owner.clone(),
            timestamp: None,
        });
    }
    actions.push(FileAction::Mkfile {
        path: file.to_string(),
        mode,
        data,
        owner,
        timestamp: None,
    });
}

/// Resolves the destination against WORKDIR; a trailing `/` marks a
/// directory, which `.`, an empty destination and several sources imply.
fn destination(state: &StageState, written: &str, several: bool) -> String {
    let workdir = state.config.config.working_dir.as_deref().unwrap_or("/");
    let is_dir = written.is_empty() || written == "." || written.ends_with('/') || several;
    let mut dest = clean_path(&join(workdir, written));
    if is_dir && !dest.ends_with('/') {
        dest.push('/');
    }
    dest
}

/// Sources are read from the root of the context or stage, never from a
/// WORKDIR. `--parents` keeps the text so the `./` pivot survives.
fn source_path(path: &str, parents: bool) -> String {
    if parents {
        format!("/{}", path.trim_start_matches('/'))
    } else {
        clean_path(&format!("/{path}"))
    }
}

fn join(base: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{base}/{path}")
    }
}

/// Normalises an absolute path: no `.`, `..` or repeated slashes.
pub(crate) fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Parses `user[:group]`, numbers as ids and anything else as names the
/// worker looks up in the destination's `/etc/passwd` and `/etc/group`.
pub(crate) fn parse_owner(node: &Node, text: &str) -> Result<ChownOpt, Failure> {
    let to_opt = |part: &str| match part.parse::<u32>() {
        Ok(id) => UserOpt::Id(id),
        Err(_) => UserOpt::Name(part.to_string()),
    };
    let (user, group) = match text.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (text, None),
    };
    if user.is_empty() || group.is_some_and(str::is_empty) {
        return Err(Failure::at(
            node,
            format!("Invalid owner `{text}`: write `user`, `user:group`, `uid` or `uid:gid`"),
        ));
    }
    Ok(ChownOpt {
        user: to_opt(user),
        group: group.map(to_opt),
    })
}

/// Parses `--chmod`: octal bits, or symbolic text such as `u+x,g-w`.
fn parse_chmod(node: &Node, text: &str) -> Result<(Option<u32>, Option<String>), Failure> {
    if !text.is_empty() && text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return match u32::from_str_radix(text, 8) {
            Ok(mode) if mode <= 0o7777 => Ok((Some(mode), None)),
            _ => Err(Failure::at(
                node,
                format!("Invalid chmod parameter `{text}`: the mode is larger than `7777`"),
            )),
        };
    }
    let clause_ok = |clause: &str| {
        let who_end = clause.find(|c| !"ugoa".contains(c)).unwrap_or(clause.len());
        let rest = &clause[who_end..];
        !rest.is_empty()
            && rest.starts_with(['+', '-', '='])
            && rest[1..]
                .chars()
                .all(|c| "rwxXst".contains(c) || c == '+' || c == '-' || c == '=')
    };
    if !text.is_empty() && text.split(',').all(clause_ok) {
        return Ok((None, Some(text.to_string())));
    }
    Err(Failure::at(
        node,
        format!(
            "Invalid chmod parameter `{text}`: use octal such as `0755` or symbolic such as `u+x`"
        ),
    ))
}
