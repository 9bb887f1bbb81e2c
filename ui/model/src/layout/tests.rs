use super::*;
use crate::dag::DagModel;
use chrono::{TimeZone, Utc};
use strata_llb::Digest;
use strata_solver::{Event, StampedEvent};

fn digest(name: &str) -> Digest {
    Digest::of_bytes(name.as_bytes())
}

fn model(nodes: &[(&str, &str, &[&str])]) -> DagModel {
    let mut model = DagModel::default();
    let time = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    let stamp = |event| StampedEvent { v: 1, time, event };
    model.apply(&stamp(Event::BuildStarted {
        build_id: "b".into(),
    }));
    for (name, stage, inputs) in nodes {
        model.apply(&stamp(Event::VertexQueued {
            vertex: digest(name),
            name: name.to_string(),
            stage: Some(stage.to_string()),
            location: None,
            inputs: inputs.iter().map(|i| digest(i)).collect(),
        }));
    }
    model
}

/// Two stages joined at the end, like a multi-stage Dockerfile.
fn two_stages() -> DagModel {
    model(&[
        ("FROM debian", "build", &[]),
        ("RUN apt-get", "build", &["FROM debian"]),
        ("RUN make", "build", &["RUN apt-get"]),
        ("FROM busybox", "final", &[]),
        ("COPY --from=build", "final", &["FROM busybox", "RUN make"]),
    ])
}

fn overlaps(a: &NodeBox, b: &NodeBox) -> bool {
    a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height
}

#[test]
fn golden_coordinates() {
    let layout = layout(&two_stages(), &LayoutOptions::default(), None);
    let placed: Vec<(&str, f64, f64)> = layout
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.x, n.y))
        .collect();
    insta::assert_debug_snapshot!(placed);
    assert_eq!(layout.width, 470.0);
    assert_eq!(layout.height, 326.0);
}

#[test]
fn nodes_never_overlap() {
    let mut nodes = Vec::new();
    let names: Vec<String> = (0..60).map(|i| format!("step {i}")).collect();
    for (i, name) in names.iter().enumerate() {
        nodes.push((name.as_str(), if i % 3 == 0 { "a" } else { "b" }, i));
    }
    let specs: Vec<(&str, &str, Vec<&str>)> = nodes
        .iter()
        .map(|(name, stage, i)| {
            let inputs = if *i == 0 {
                vec![]
            } else {
                vec![names[i / 2].as_str(), names[i - 1].as_str()]
            };
            (*name, *stage, inputs)
        })
        .collect();
    let borrowed: Vec<(&str, &str, &[&str])> = specs
        .iter()
        .map(|(n, s, i)| (*n, *s, i.as_slice()))
        .collect();
    let layout = layout(&model(&borrowed), &LayoutOptions::default(), None);
    for (i, a) in layout.nodes.iter().enumerate() {
        for b in &layout.nodes[i + 1..] {
            assert!(!overlaps(a, b), "{} overlaps {}", a.name, b.name);
        }
    }
}

#[test]
fn edges_point_down() {
    let layout = layout(&two_stages(), &LayoutOptions::default(), None);
    assert_eq!(layout.edges.len(), 4);
    for edge in &layout.edges {
        let (from, to) = (edge.points[0], edge.points[1]);
        assert!(to.1 > from.1, "edge {} -> {} points up", edge.from, edge.to);
        assert!(layout.node(&edge.to).unwrap().layer > layout.node(&edge.from).unwrap().layer);
    }
}

#[test]
fn layout_is_stable_across_rebuilds() {
    let first = layout(&two_stages(), &LayoutOptions::default(), None);
    // A rebuild queues the same steps in another order.
    let reordered = model(&[
        ("FROM busybox", "final", &[]),
        ("FROM debian", "build", &[]),
        ("RUN apt-get", "build", &["FROM debian"]),
        ("RUN make", "build", &["RUN apt-get"]),
        ("COPY --from=build", "final", &["FROM busybox", "RUN make"]),
    ]);
    let second = layout(&reordered, &LayoutOptions::default(), Some(&first));
    for node in &first.nodes {
        let again = second.nodes.iter().find(|n| n.name == node.name).unwrap();
        assert_eq!((again.x, again.y), (node.x, node.y), "{} moved", node.name);
    }
}

#[test]
fn five_hundred_steps_lay_out() {
    let names: Vec<String> = (0..500).map(|i| format!("step {i}")).collect();
    let specs: Vec<(&str, &str, Vec<&str>)> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let inputs = if i < 10 {
                vec![]
            } else {
                vec![names[i - 10].as_str()]
            };
            (name.as_str(), "s", inputs)
        })
        .collect();
    let borrowed: Vec<(&str, &str, &[&str])> = specs
        .iter()
        .map(|(n, s, i)| (*n, *s, i.as_slice()))
        .collect();
    let layout = layout(&model(&borrowed), &LayoutOptions::default(), None);
    assert_eq!(layout.nodes.len(), 500);
    assert_eq!(layout.nodes.iter().map(|n| n.layer).max(), Some(49));
}
