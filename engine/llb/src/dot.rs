use crate::{Definition, Op};
use std::fmt::Write;

/// Renders a definition as a Graphviz `digraph`, one node per vertex and
/// one edge per input, labelled with the op kind and description.
pub fn to_dot(definition: &Definition) -> String {
    let mut out = String::from(
        "digraph llb {\n  rankdir=\"TB\";\n  node [shape=box, fontname=\"monospace\"];\n",
    );
    for (digest, vertex) in &definition.vertices {
        let description = definition
            .metadata
            .get(digest)
            .map(|m| m.description.as_str())
            .unwrap_or_default();
        let detail = match &vertex.op {
            Op::Source(source) => source.identifier.clone(),
            Op::Exec(exec) => exec.meta.args.join(" "),
            Op::File(file) => format!("{} action(s)", file.actions.len()),
            Op::Merge(merge) => format!("{} input(s)", merge.inputs.len()),
        };
        let label = format!(
            "{} {}\\n{}\\n{}",
            vertex.op.kind(),
            digest.short(),
            description,
            detail
        );
        let _ = writeln!(out, "  \"{}\" [label=\"{}\"];", digest, escape(&label));
    }
    for (digest, vertex) in &definition.vertices {
        for input in &vertex.inputs {
            let _ = writeln!(out, "  \"{}\" -> \"{}\";", input.digest, digest);
        }
    }
    out.push_str("}\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('"', "\\\"").replace('\n', "\\n")
}
