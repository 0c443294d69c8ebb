//! Choosing the nodes of a write: one slot per replica (or fragment archive), all filled
//! at once.
//!
//! Each slot takes the next node from the partition's shared iterator (primaries, then
//! handoffs, benched and silent nodes last) and makes its attempt: for an object PUT the
//! request head with `Expect: 100-continue` (the body follows once every slot is
//! filled), for a small write (DELETE, POST, container and account writes) the whole
//! request. A node that refuses (507, a 5xx) or cannot be reached gives the slot to the
//! next node, as in Swift. A final answer that decides the request (412 to
//! `If-None-Match: *`, 409 for an older timestamp, a 4xx) ends the slot with that answer.
//!
//! Where we differ from Swift: Swift waits up to `node_timeout` (10 s) for a silent
//! node's `100 Continue` (or answer) before its slot moves on, so every write that meets
//! a hung or cut-off node stalls that long until the node has been error-limited. Here a
//! slot whose node has not answered within `concurrency_timeout` asks the next node as
//! well, and the first to accept takes the slot; the silent node is offered writes last
//! until it answers again. The silent attempt runs on in the background to its own
//! `node_timeout`, so a hung node is still counted an error, and benched, when Swift
//! would count it. A PUT's node that accepts late has its connection closed before any
//! body byte is sent, so it stores nothing; a small write that lands late is the same
//! write with the same timestamp, and its handoff copy is replicated home as any other.
//!
//! Once a quorum of slots is filled, the others get time for their newest attempt to be
//! answered (`concurrency_timeout`) and `post_quorum_timeout` more, renewed while they
//! still find new nodes to try; a slot left waiting only on silent nodes is left to
//! finish in the background (for the same error accounting) and the write goes on with
//! the nodes it has.

use std::future::Future;

use super::*;

/// What one node said to the request head.
pub(super) enum Attempt<T> {
    /// It takes the body.
    Ready(T),
    /// A final answer that ends the slot (its status and headers).
    Final(u16, HeaderMap),
    /// It cannot take it (already counted against the node); try the next one.
    Next,
}

/// How one slot ended.
pub(super) enum Filled<T> {
    Ready(T),
    Final(u16, HeaderMap),
}

/// The next node for a slot: a usable one, else one the error limiter benched (it may be
/// back; "503" would be a worse answer than a slow one).
fn next_node(proxy: &Proxy, iter: &Mutex<NodeIter>) -> Option<Node> {
    let mut it = iter.lock().expect("node iter");
    it.next_usable(&proxy.limiter).or_else(|| it.next_benched())
}

/// Fills one slot: tries nodes from `iter` with `attempt` until one is `Ready` or gives
/// a `Final` answer, hedging with the next node every `concurrency_timeout` while the
/// current ones stay silent. `None` when the nodes ran out.
async fn fill_slot<T, F, Fut>(
    proxy: Arc<Proxy>,
    iter: Arc<Mutex<NodeIter>>,
    last_start: Arc<Mutex<tokio::time::Instant>>,
    attempt: F,
) -> Option<Filled<T>>
where
    F: Fn(Node) -> Fut,
    Fut: Future<Output = Attempt<T>> + Send + 'static,
    T: Send + 'static,
{
    let mut running = FuturesUnordered::new();
    let start = |node: Node| {
        *last_start.lock().expect("last start") = tokio::time::Instant::now();
        let (proxy, outcome) = (proxy.clone(), attempt(node.clone()));
        async move {
            let outcome = outcome.await;
            if !matches!(outcome, Attempt::Next) {
                proxy.limiter.answered(&node);
            }
            (node, outcome)
        }
    };
    let mut nodes_left = true;
    // The nodes of the attempts in `running`.
    let mut in_flight: Vec<Node> = Vec::new();
    loop {
        if running.is_empty() {
            let node = next_node(&proxy, &iter)?;
            in_flight.push(node.clone());
            running.push(start(node));
        }
        let hedge = tokio::time::sleep(proxy.concurrency_timeout);
        let outcome = tokio::select! {
            Some((node, outcome)) = running.next() => {
                in_flight.retain(|n| n.key() != node.key());
                outcome
            }
            _ = hedge, if nodes_left => {
                // Every attempt still running has been silent for a whole hedge delay.
                for node in &in_flight {
                    proxy.limiter.silent(node);
                }
                match next_node(&proxy, &iter) {
                    Some(node) => {
                        in_flight.push(node.clone());
                        running.push(start(node));
                    }
                    None => nodes_left = false,
                }
                continue;
            }
        };
        let filled = match outcome {
            Attempt::Ready(t) => Filled::Ready(t),
            Attempt::Final(status, headers) => Filled::Final(status, headers),
            Attempt::Next => continue,
        };
        // Attempts outrun by this one finish in the background: a silent node is then
        // counted an error when its own timeout passes, and a late acceptance is closed.
        if !running.is_empty() {
            tokio::spawn(async move { while running.next().await.is_some() {} });
        }
        return Some(filled);
    }
}

/// Fills `slots` slots at once (slot `i` tried with `attempt(i, node)`), waiting for all
/// of them until `quorum` are `Ready`, then one hedge and `post_quorum_timeout` more. Gives the ready
/// ones with their slot numbers, and the final answers.
pub(super) async fn fill_slots<T, F, Fut>(
    proxy: &Arc<Proxy>,
    iter: NodeIter,
    slots: usize,
    quorum: usize,
    attempt: F,
) -> (Vec<(usize, T)>, Vec<(u16, HeaderMap)>)
where
    F: Fn(usize, Node) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Attempt<T>> + Send + 'static,
    T: Send + 'static,
{
    fill_slots_until(
        proxy,
        iter,
        slots,
        |ready: &[(usize, T)]| ready.len() >= quorum,
        attempt,
    )
    .await
}

/// [`fill_slots`] with the quorum decided by `enough` over the ready slots (small writes
/// need a quorum of *agreeing* answers, not only of answers).
pub(super) async fn fill_slots_until<T, F, Fut>(
    proxy: &Arc<Proxy>,
    iter: NodeIter,
    slots: usize,
    enough: impl Fn(&[(usize, T)]) -> bool,
    attempt: F,
) -> (Vec<(usize, T)>, Vec<(u16, HeaderMap)>)
where
    F: Fn(usize, Node) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Attempt<T>> + Send + 'static,
    T: Send + 'static,
{
    let iter = Arc::new(Mutex::new(iter));
    let last_start = Arc::new(Mutex::new(tokio::time::Instant::now()));
    let mut filling = FuturesUnordered::new();
    for slot in 0..slots {
        let attempt = attempt.clone();
        let task = tokio::spawn(fill_slot(
            proxy.clone(),
            iter.clone(),
            last_start.clone(),
            move |node| attempt(slot, node),
        ));
        filling.push(async move { (slot, task.await.ok().flatten()) });
    }
    let mut ready = Vec::new();
    let mut finals = Vec::new();
    let mut quorum_at: Option<tokio::time::Instant> = None;
    // Past a quorum, the others get time for their newest attempt to be answered (a
    // hedge delay) and post_quorum_timeout more; a slot still trying new nodes extends
    // the wait, one that only waits on silent nodes does not.
    let grace = proxy.concurrency_timeout + proxy.post_quorum_timeout;
    loop {
        let next = match quorum_at {
            Some(q) => {
                let newest = *last_start.lock().expect("last start");
                let deadline = q.max(newest) + grace;
                match tokio::time::timeout_at(deadline, filling.next()).await {
                    Ok(n) => n,
                    Err(_) if *last_start.lock().expect("last start") > newest => continue,
                    Err(_) => break, // the spawned slots finish on their own
                }
            }
            None => filling.next().await,
        };
        match next {
            Some((slot, Some(Filled::Ready(t)))) => ready.push((slot, t)),
            Some((_, Some(Filled::Final(status, headers)))) => finals.push((status, headers)),
            Some((_, None)) => {}
            None => break,
        }
        if quorum_at.is_none() && enough(&ready) {
            quorum_at = Some(tokio::time::Instant::now());
        }
    }
    ready.sort_by_key(|(slot, _)| *slot);
    (ready, finals)
}
