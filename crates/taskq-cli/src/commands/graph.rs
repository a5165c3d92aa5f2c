//! `taskq graph`

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::json;
use taskq::{Link, Queue, State, TaskId};

use super::parse_id;
use crate::failure::Failure;
use crate::output::Output;

/// The most tasks a graph reads; a larger workflow is cut there, and says so.
const MOST_TASKS: usize = 2000;

/// Print the workflow a task belongs to as a tree: from the tasks that
/// wait for nothing down to those that wait for them, each with its state.
/// A task that waits for several others appears under each, its subtree
/// once.
///
/// Example: taskq graph 42
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Any task of the workflow.
    #[arg(value_parser = parse_id)]
    pub id: TaskId,
}

/// One task of the graph as read.
struct Node {
    action: Option<String>,
    state: Option<State>,
}

/// The tasks and edges (dependency, dependent, outcome) reachable from a
/// task either way, up to [`MOST_TASKS`].
struct Graph {
    nodes: BTreeMap<TaskId, Node>,
    edges: BTreeSet<(TaskId, TaskId, Option<State>)>,
    cut: bool,
}

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    let graph = read(queue, args.id).await?;
    if out.json {
        let nodes: Vec<_> = graph
            .nodes
            .iter()
            .map(|(id, node)| {
                json!({"id": id.0, "action": node.action, "state": node.state.map(State::as_str)})
            })
            .collect();
        let edges: Vec<_> = graph
            .edges
            .iter()
            .map(|(from, to, outcome)| {
                json!({"depends_on": from.0, "task": to.0, "outcome": outcome.map(State::as_str)})
            })
            .collect();
        return out.json(&json!({"nodes": nodes, "edges": edges, "cut": graph.cut}));
    }
    let has_dependency: HashSet<TaskId> = graph.edges.iter().map(|(_, to, _)| *to).collect();
    let mut shown = HashSet::new();
    for root in graph.nodes.keys().filter(|id| !has_dependency.contains(id)) {
        print_tree(&graph, *root, "", "", &mut shown, out)?;
    }
    if graph.cut {
        out.line(format!("(cut at {MOST_TASKS} tasks)"))?;
    }
    Ok(())
}

async fn read(queue: &Queue, start: TaskId) -> Result<Graph, Failure> {
    let mut graph = Graph {
        nodes: BTreeMap::new(),
        edges: BTreeSet::new(),
        cut: false,
    };
    let first = queue.get(start).await?;
    graph.nodes.insert(
        start,
        Node {
            action: first.as_ref().map(|t| t.action.clone()),
            state: first.map(|t| t.state),
        },
    );
    let mut todo = vec![start];
    let mut read = HashSet::new();
    while let Some(id) = todo.pop() {
        if !read.insert(id) {
            continue;
        }
        if graph.nodes.len() >= MOST_TASKS {
            graph.cut = true;
            break;
        }
        let links = queue.links(id).await?;
        let mut add = |link: &Link, edge: (TaskId, TaskId)| {
            graph.edges.insert((edge.0, edge.1, link.outcome));
            graph.nodes.entry(link.id).or_insert_with(|| Node {
                action: link.action.clone(),
                state: link.state,
            });
            todo.push(link.id);
        };
        for link in &links.dependencies {
            add(link, (link.id, id));
        }
        for link in &links.dependents {
            add(link, (id, link.id));
        }
    }
    Ok(graph)
}

/// Prints `id` and, below it, the tasks that wait for it.
fn print_tree(
    graph: &Graph,
    id: TaskId,
    lead: &str,
    child_lead: &str,
    shown: &mut HashSet<TaskId>,
    out: &Output,
) -> Result<(), Failure> {
    let node = &graph.nodes[&id];
    let state = node.state.map_or("gone".to_string(), |s| s.to_string());
    let action = node.action.as_deref().unwrap_or("-");
    let again = !shown.insert(id);
    let suffix = if again { " (see above)" } else { "" };
    out.line(format!("{lead}{id} {action} [{state}]{suffix}"))?;
    if again {
        return Ok(());
    }
    let children: Vec<TaskId> = graph
        .edges
        .iter()
        .filter(|(from, _, _)| *from == id)
        .map(|(_, to, _)| *to)
        .collect();
    for (i, child) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        let (branch, next) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        print_tree(
            graph,
            *child,
            &format!("{child_lead}{branch}"),
            &format!("{child_lead}{next}"),
            shown,
            out,
        )?;
    }
    Ok(())
}
