//! The node task's loop (see the module doc of [`super`]).

use std::collections::{BTreeMap, HashSet};
use std::future::pending;
use std::net::SocketAddr;
use std::time::Duration;

use rand::rngs::SysRng;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tq_core::api::{CommitOutcome, CommitRequest, PrepareAndCommitOutcome};
use tq_core::authority::{
    AnswerTag, CoordinatorStatusQuery, LatestSecretQuery, NodeStatusQuery, RequestAuth,
    RequestRefusal, Verified,
};
use tq_core::config::Configuration;
use tq_core::ids::{Epoch, PlatformId, RackId};
use tq_core::node::{
    CommitError, Counter, Event, LoadSecretError, Node, NodeCtx, PrepareAndCommitError, drive_async,
};
use tq_core::wire::MAX_PEER_MSG_LEN;
use tracing::Instrument;
use zeroize::Zeroize;

use super::io::ShimIo;
use super::report::{
    NodeReport, PeerReport, StorageHealth, owned_coordinator_status, owned_status,
};
use super::stats::ProxyOutcome;
use super::{NodeConfig, rack_of};
use crate::audit::event::AcceptedResult;
use crate::audit::{AuditEvent, NexusCall, SecretFor};
use crate::handle::{Answer, Bound, MAX_DEADLINE, Reply, Request, Tagged, Unavailable};
use crate::metrics::Snapshot;
use crate::net::{CloseReason, Frame, NetEvent, SendError};
use crate::proxy::{self, AnswerRef, ProxyAnswer, ProxyBody, ProxyRequest, RemoteUnavailable};
use crate::secrets::{LoadedSecret, fingerprint_answer};

/// The most network events run before their audit records are flushed
/// (a rack's worth of share requests): bounds how long an API request
/// waits behind a burst of frames.
const MAX_BATCH: usize = 32;

/// A proxied call forwarded from here, waiting for its answer.
struct Forwarded {
    to: PlatformId,
    deadline: Instant,
    reply: Reply<ProxyAnswer>,
}

type SecretReply = Reply<Tagged<Result<LoadedSecret, LoadSecretError>>>;

/// A caller of the latest secret waiting for shares: Nexus's request,
/// with its checked request (its nonce is what the answer's tag covers),
/// or the sled itself (for its disks).
enum SecretWaiter {
    Nexus(SecretReply, Verified<'static, LatestSecretQuery>),
    Sled(Reply<Result<LoadedSecret, LoadSecretError>>),
}

impl SecretWaiter {
    fn is_closed(&self) -> bool {
        match self {
            Self::Nexus(reply, _) => reply.is_closed(),
            Self::Sled(reply) => reply.is_closed(),
        }
    }

    fn refuse(self, why: Unavailable) {
        match self {
            Self::Nexus(reply, _) => {
                let _ = reply.send(Err(why));
            }
            Self::Sled(reply) => {
                let _ = reply.send(Err(why));
            }
        }
    }
}

/// A Nexus call's answer as the node gave it, with its tag, or the
/// refusal of its authenticator.
type Ran<T> = Result<(Option<AnswerTag>, T), RequestRefusal>;

pub(crate) struct Task {
    node: Box<Node>,
    ctx: Box<NodeCtx>,
    /// Where the core encodes each outgoing message (a Prepare or a Share
    /// carries a key share): zeroed after every drive.
    buf: Box<[u8; MAX_PEER_MSG_LEN]>,
    io: ShimIo,
    rng: SysRng,
    committed: watch::Sender<Option<Epoch>>,
    peers: BTreeMap<PlatformId, SocketAddr>,
    /// Callers of `load_latest_secret` waiting for shares.
    waiters: Vec<SecretWaiter>,
    max_waiters: usize,
    forwarded: BTreeMap<u64, Forwarded>,
    max_proxied: usize,
    next_proxy_id: u64,
    share_patience: Duration,
    /// The secret load collecting shares now, and when it asks every
    /// member (`None` once it did).
    patience: Option<LoadPatience>,
}

/// When a secret load still collecting shares of `epoch` widens its asks
/// ([`Node::widen_secret_load`]).
#[derive(Clone, Copy)]
struct LoadPatience {
    epoch: Epoch,
    widen_at: Option<Instant>,
}

impl Task {
    pub(crate) fn new(
        ctx: Box<NodeCtx>,
        io: ShimIo,
        config: &NodeConfig,
        committed: watch::Sender<Option<Epoch>>,
    ) -> Self {
        Self {
            node: Box::new(Node::new()),
            ctx,
            buf: Box::new([0; MAX_PEER_MSG_LEN]),
            io,
            rng: SysRng,
            committed,
            peers: config.peers.clone(),
            waiters: Vec::new(),
            max_waiters: config.max_secret_waiters,
            forwarded: BTreeMap::new(),
            max_proxied: config.max_proxied,
            next_proxy_id: 0,
            share_patience: config.share_patience,
            patience: None,
        }
    }

    pub(crate) async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request>,
        mut net_events: mpsc::Receiver<NetEvent>,
    ) {
        // Store what boot left unstored (LRTQ data) before anything else.
        self.drive(|_, _, _| ()).await;
        self.settle().await;
        self.io.flush_audited().await;
        let mut api_open = true;
        let shutdown_reply = loop {
            let timer = self.next_timer();
            tokio::select! {
                request = requests.recv(), if api_open => match request {
                    Some(Request::Shutdown(reply)) => break Some(reply),
                    Some(request) => self.on_request(request).await,
                    // No handle is left, but peers are still served.
                    None => api_open = false,
                },
                event = net_events.recv() => match event {
                    Some(event) => {
                        self.on_net_event(event).await;
                        self.run_ready_net_events(&mut net_events).await;
                    }
                    None => break None,
                },
                () = wait_until(timer) => self.on_timer().await,
            }
            // Settled first: a secret waiter's answer writes its record,
            // and the batch's records with it, in one flush.
            self.settle().await;
            self.io.flush_audited().await;
        };
        self.stop(shutdown_reply).await;
    }

    /// Runs the network events already queued, up to [`MAX_BATCH`] of them,
    /// so that their audit records go to the drives in one flush: when
    /// every sled asks this one for its share at once, each share waits
    /// for one flush, not for one per request before it.
    async fn run_ready_net_events(&mut self, net_events: &mut mpsc::Receiver<NetEvent>) {
        for _ in 1..MAX_BATCH {
            match net_events.try_recv() {
                Ok(event) => self.on_net_event(event).await,
                Err(_) => return,
            }
        }
    }

    /// Runs one input through the core's driving loop. Its messages that
    /// wait for an audit record are sent by the next
    /// [`ShimIo::flush_audited`]: the loop's, after each batch of inputs,
    /// or one of [`ShimIo::record`] before an answer is given.
    async fn drive<T>(
        &mut self,
        input: impl FnOnce(&mut Node, &mut NodeCtx, &mut SysRng) -> T,
    ) -> T {
        let rng = &mut self.rng;
        let (output, _stored) = drive_async(
            &mut self.node,
            &mut self.ctx,
            &mut self.io,
            &mut self.buf,
            |node, ctx| input(node, ctx, rng),
        )
        .await;
        // Every message was copied into its own zeroizing frame.
        self.buf.zeroize();
        output
    }

    /// `answer` if the state it follows from is stored; otherwise nothing
    /// may be acknowledged.
    fn acknowledged<T>(&self, answer: T) -> Answer<T> {
        if self.ctx.is_stored() {
            Ok(answer)
        } else {
            Err(Unavailable::NotStored {
                attempts: self.io.failing(),
            })
        }
    }

    /// A Nexus call's answer with its tag once the state it follows from
    /// is stored; the refusal of its authenticator as it is.
    fn tagged<T>(&self, ran: Ran<T>) -> Answer<Tagged<T>> {
        match ran {
            Err(refusal) => Err(Unavailable::Refused(refusal)),
            Ok((Some(tag), answer)) => self.acknowledged(Tagged { answer, tag }),
            // A node that verified a request holds a key and tags every
            // answer of the core.
            Ok((None, _)) => Err(Unavailable::Internal),
        }
    }

    fn rack(&self) -> Option<RackId> {
        rack_of(self.ctx.persistent_state())
    }

    // ---- API requests ----

    async fn on_request(&mut self, request: Request) {
        match request {
            Request::Reconfigure(auth, msg, reply) => {
                let span = tracing::info_span!("reconfigure", epoch = %msg.epoch);
                let ran = self
                    .drive(|node, ctx, rng| {
                        let msg = ctx.verify_request(&auth, msg.as_ref())?;
                        let answer = node.coordinate_reconfiguration(ctx, rng, msg);
                        Ok((ctx.tag_answer(&msg, &answer), answer))
                    })
                    .instrument(span)
                    .await;
                let answer = self.tagged(ran);
                self.audit(NexusCall::Reconfigure, msg.epoch, None, &answer)
                    .await;
                let _ = reply.send(answer);
            }
            Request::UpgradeFromLrtq(auth, msg, reply) => {
                let span = tracing::info_span!("upgrade_from_lrtq", epoch = %msg.epoch);
                let ran = self
                    .drive(|node, ctx, rng| {
                        let msg = ctx.verify_request(&auth, msg.as_ref())?;
                        let answer = node.coordinate_upgrade_from_lrtq(ctx, rng, msg);
                        Ok((ctx.tag_answer(&msg, &answer), answer))
                    })
                    .instrument(span)
                    .await;
                let answer = self.tagged(ran);
                self.audit(NexusCall::UpgradeFromLrtq, msg.epoch, None, &answer)
                    .await;
                let _ = reply.send(answer);
            }
            Request::Commit(auth, request, reply) => {
                let _ = reply.send(self.commit(&auth, &request, None).await);
            }
            Request::PrepareAndCommit(auth, config, reply) => {
                let _ = reply.send(self.prepare_and_commit(&auth, &config, None).await);
            }
            Request::CoordinatorStatus(auth, reply) => {
                let ran = match self.ctx.verify_request(&auth, &CoordinatorStatusQuery) {
                    Ok(query) => {
                        let status = self.node.coordinator_status(&self.ctx, query);
                        let tag = self.ctx.tag_answer(&query, &status);
                        Ok((tag, status.map(owned_coordinator_status)))
                    }
                    Err(refusal) => {
                        self.audit_refused_read(NexusCall::CoordinatorStatus, None, refusal)
                            .await;
                        Err(refusal)
                    }
                };
                let _ = reply.send(self.tagged(ran));
            }
            Request::Status(reply) => {
                let _ = reply.send(Ok(Box::new(self.report())));
            }
            Request::LoadSecret(epoch, reply) => {
                let rack = self.rack();
                let result = self
                    .drive(|node, ctx, _| node.load_rack_secret(ctx, epoch))
                    .await;
                self.start_patience();
                let loaded = result.map(|secret| {
                    secret.and_then(|s| rack.map(|rack| LoadedSecret::new(rack, epoch, s)))
                });
                let answered = loaded.as_ref().map(Option::as_ref);
                if let Some(event) = secret_event(SecretFor::Sled, Some(epoch), answered) {
                    self.io.record(event).await;
                }
                let _ = reply.send(Ok(loaded));
            }
            Request::LoadLatestSecret(auth, reply) => {
                match self.ctx.verify_request(&auth, &LatestSecretQuery) {
                    Ok(query) => {
                        self.wait_for_latest(SecretWaiter::Nexus(reply, query))
                            .await
                    }
                    Err(refusal) => {
                        let event = AuditEvent::SecretLoad {
                            for_whom: SecretFor::NexusFingerprint,
                            epoch: None,
                            refused: Some(refusal.to_string()),
                        };
                        self.io.record(event).await;
                        let _ = reply.send(Err(Unavailable::Refused(refusal)));
                    }
                }
            }
            Request::LoadOwnLatestSecret(reply) => {
                self.wait_for_latest(SecretWaiter::Sled(reply)).await;
            }
            Request::Audit(event, reply) => {
                self.io.record(*event).await;
                let _ = reply.send(Ok(()));
            }
            Request::ClearSecrets(reply) => {
                self.drive(|node, _, _| node.clear_secrets()).await;
                // A load of the same epoch after this is a new one.
                self.patience = None;
                let _ = reply.send(Ok(()));
                // Whoever still waits for the latest secret starts over.
                self.serve_waiters().await;
            }
            Request::SetPeers(peers, reply) => {
                self.peers.clone_from(&peers);
                self.io.net.set_peers(peers);
                let _ = reply.send(Ok(()));
            }
            Request::Metrics(reply) => {
                let _ = reply.send(Ok(Box::new(self.snapshot())));
            }
            Request::Proxy {
                to,
                auth,
                request,
                deadline,
                reply,
            } => self.forward(to, &auth, request, deadline, reply),
            // Handled by the loop.
            Request::Shutdown(reply) => {
                let _ = reply.send(Err(Unavailable::Stopped));
            }
        }
    }

    /// Records a Nexus request's answer (fsynced) before it is given: the
    /// node's result, or why its authenticator was refused.
    async fn audit<T: AcceptedResult, E: std::fmt::Display>(
        &mut self,
        call: NexusCall,
        epoch: Epoch,
        via: Option<&PlatformId>,
        answer: &Answer<Tagged<Result<T, E>>>,
    ) {
        let via = via.map(ToString::to_string);
        let epoch = Some(epoch.0);
        let event = match answer {
            Err(Unavailable::Refused(refusal)) => {
                let refused: Result<T, _> = Err(refusal);
                AuditEvent::nexus_request(call, epoch, via, Ok(&refused))
            }
            answer => {
                let result = answer.as_ref().map(|tagged| &tagged.answer);
                AuditEvent::nexus_request(call, epoch, via, result.map_err(|_| ()))
            }
        };
        self.io.record(event).await;
    }

    /// Records a read (a status) whose authenticator the node refused; an
    /// accepted one is not recorded (see [`NexusCall`]).
    async fn audit_refused_read(
        &mut self,
        call: NexusCall,
        via: Option<&PlatformId>,
        refusal: RequestRefusal,
    ) {
        let via = via.map(ToString::to_string);
        let refused: Result<(), _> = Err(refusal);
        let event = AuditEvent::nexus_request(call, None, via, Ok(&refused));
        self.io.record(event).await;
    }

    /// `via`: the peer that relayed the call, if proxied.
    async fn commit(
        &mut self,
        auth: &RequestAuth,
        request: &CommitRequest,
        via: Option<&PlatformId>,
    ) -> Answer<Tagged<Result<CommitOutcome, CommitError>>> {
        let span = tracing::info_span!("commit", epoch = %request.epoch);
        let ran = self
            .drive(|node, ctx, _| {
                let request = ctx.verify_request(auth, request)?;
                let answer = node.commit_configuration(ctx, request);
                Ok((ctx.tag_answer(&request, &answer), answer))
            })
            .instrument(span)
            .await;
        let answer = self.tagged(ran);
        self.audit(NexusCall::Commit, request.epoch, via, &answer)
            .await;
        answer
    }

    async fn prepare_and_commit(
        &mut self,
        auth: &RequestAuth,
        config: &Configuration,
        via: Option<&PlatformId>,
    ) -> Answer<Tagged<Result<PrepareAndCommitOutcome, PrepareAndCommitError>>> {
        let span = tracing::info_span!("prepare_and_commit", epoch = %config.epoch());
        let ran = self
            .drive(|node, ctx, _| {
                let config = ctx.verify_request(auth, config)?;
                let answer = node.prepare_and_commit(ctx, config);
                Ok((ctx.tag_answer(&config, &answer), answer))
            })
            .instrument(span)
            .await;
        let answer = self.tagged(ran);
        let call = NexusCall::PrepareAndCommit;
        self.audit(call, config.epoch(), via, &answer).await;
        answer
    }

    // ---- the latest secret, waited for ----

    async fn wait_for_latest(&mut self, waiter: SecretWaiter) {
        let Some(waiter) = self.try_answer(waiter).await else {
            return;
        };
        self.waiters.retain(|waiter| !waiter.is_closed());
        if self.waiters.len() >= self.max_waiters {
            self.io.stats.busy(Bound::SecretWaiters);
            waiter.refuse(Unavailable::Busy(Bound::SecretWaiters));
            return;
        }
        self.waiters.push(waiter);
    }

    /// Answers `waiter` if the latest secret (the LRTQ secret as epoch 1 on
    /// an LRTQ sled with nothing committed) or the core's refusal of it
    /// (nothing committed and no LRTQ data included: no share will change
    /// that, so it is answered at once) is there, recording it first;
    /// hands `waiter` back while its shares are being collected.
    async fn try_answer(&mut self, waiter: SecretWaiter) -> Option<SecretWaiter> {
        let rack = self.rack();
        let query = match &waiter {
            SecretWaiter::Nexus(_, query) => Some(*query),
            SecretWaiter::Sled(_) => None,
        };
        let loaded = self
            .drive(|node, ctx, _| match query {
                Some(query) => node.load_latest_rack_secret(ctx, query),
                None => node.load_own_latest_rack_secret(ctx),
            })
            .await;
        let answer = match loaded {
            // LRTQ data or a committed configuration names the rack.
            Ok(Some((epoch, secret))) => match rack {
                Some(rack) => Ok(LoadedSecret::new(rack, epoch, secret)),
                None => {
                    waiter.refuse(Unavailable::Internal);
                    return None;
                }
            },
            Ok(None) => {
                self.start_patience();
                return Some(waiter);
            }
            Err(error) => Err(error),
        };
        let for_whom = match &waiter {
            SecretWaiter::Nexus(..) => SecretFor::NexusFingerprint,
            SecretWaiter::Sled(_) => SecretFor::Sled,
        };
        if let Some(event) = secret_event(for_whom, None, answer.as_ref().map(Some)) {
            self.io.record(event).await;
        }
        match waiter {
            SecretWaiter::Nexus(reply, query) => {
                let tag = self.ctx.tag_answer(&query, &fingerprint_answer(&answer));
                let _ = reply.send(match tag {
                    Some(tag) => Ok(Tagged { answer, tag }),
                    None => Err(Unavailable::Internal),
                });
            }
            SecretWaiter::Sled(reply) => {
                let _ = reply.send(Ok(answer));
            }
        }
        None
    }

    async fn serve_waiters(&mut self) {
        self.waiters.retain(|waiter| !waiter.is_closed());
        while let Some(waiter) = self.waiters.pop() {
            if let Some(waiter) = self.try_answer(waiter).await {
                self.waiters.push(waiter);
                return;
            }
        }
    }

    // ---- events ----

    /// Hands every event of the inputs run so far to whoever waits for it.
    async fn settle(&mut self) {
        loop {
            let events = std::mem::take(&mut self.io.events);
            if events.is_empty() {
                return;
            }
            let mut serve = false;
            for event in events {
                serve |= self.on_event(event);
            }
            if serve {
                self.serve_waiters().await;
            }
        }
    }

    /// Acts on one event; true if secret waiters should be served.
    fn on_event(&mut self, event: Event) -> bool {
        match event {
            Event::Committed(epoch) => {
                tracing::info!(epoch = %epoch, "committed");
                self.committed.send_if_modified(|latest| {
                    let newer = latest.is_none_or(|l| l < epoch);
                    if newer {
                        *latest = Some(epoch);
                    }
                    newer
                });
                true
            }
            Event::SecretLoaded(epoch) => {
                tracing::info!(epoch = %epoch, "rack secret loaded");
                true
            }
            Event::Expunged { epoch, from } => {
                tracing::warn!(epoch = %epoch, from = %from, "this sled was expunged");
                true
            }
            Event::AlarmRaised(alarm) => {
                tracing::error!(%alarm, "ALARM");
                false
            }
            Event::ShareComputed(epoch) => {
                tracing::info!(epoch = %epoch, "computed own share");
                false
            }
            Event::ReadyToCommit { epoch, acks } => {
                tracing::info!(epoch = %epoch, acks, "enough prepare acks to commit");
                false
            }
        }
    }

    // ---- the network ----

    async fn on_net_event(&mut self, event: NetEvent) {
        match event {
            NetEvent::Connected(peer) => {
                let span = tracing::info_span!("peer", peer = %peer);
                self.drive(|node, ctx, _| node.on_connect(ctx, &peer))
                    .instrument(span)
                    .await;
            }
            NetEvent::Disconnected(peer) => {
                self.drive(|node, ctx, _| node.on_disconnect(ctx, &peer))
                    .await;
                self.fail_forwarded(|f| f.to == peer, ProxyOutcome::Disconnected);
            }
            NetEvent::Frame(peer, frame) if proxy::is_proxy_frame(&frame) => {
                let span = tracing::info_span!("proxy", peer = %peer);
                self.on_proxy_frame(peer, frame).instrument(span).await;
            }
            NetEvent::Frame(peer, frame) => {
                let span = tracing::info_span!("peer", peer = %peer);
                let undecodable = self.ctx.counters().get(Counter::Undecodable);
                self.drive(|node, ctx, rng| node.handle_bytes(ctx, rng, &peer, &frame))
                    .instrument(span)
                    .await;
                if self.ctx.counters().get(Counter::Undecodable) != undecodable {
                    self.io.stats.undecodable_disconnect();
                    self.io.net.disconnect(&peer, CloseReason::Undecodable);
                }
            }
        }
    }

    async fn on_proxy_frame(&mut self, from: PlatformId, frame: Frame) {
        let decoded = match proxy::decode(&frame) {
            Ok(decoded) => decoded,
            Err(error) => {
                tracing::warn!(%error, "bad proxy frame; dropping the connection");
                self.io.stats.proxy_bad_frame();
                self.io.net.disconnect(&from, CloseReason::Undecodable);
                return;
            }
        };
        match decoded.body {
            ProxyBody::Request(auth, request) => {
                self.serve_proxied(from, decoded.rack_id, decoded.id, &auth, request)
                    .await;
            }
            ProxyBody::Answer(answer) => match self.forwarded.remove(&decoded.id) {
                Some(call) if call.to == from => {
                    self.io.stats.proxied(ProxyOutcome::Answered);
                    let _ = call.reply.send(Ok(answer));
                }
                other => {
                    if let Some(call) = other {
                        // Not this peer's call: keep waiting for the right one.
                        self.forwarded.insert(decoded.id, call);
                    }
                    self.io.stats.proxy_late_answer();
                    tracing::debug!(id = decoded.id, "proxy answer for no call in flight");
                }
            },
        }
    }

    /// Runs a call another sled's caller sent here, once this node has
    /// checked Nexus's authenticator `auth` (a refusal is counted by the
    /// node and answered as such), and answers it with the node's tag. It
    /// is run here, never forwarded again.
    async fn serve_proxied(
        &mut self,
        from: PlatformId,
        rack: RackId,
        id: u64,
        auth: &RequestAuth,
        request: ProxyRequest,
    ) {
        self.io.stats.proxy_served();
        let not_stored = AnswerRef::Unavailable(RemoteUnavailable::NotStored);
        let frame = match request {
            ProxyRequest::Commit(request) => match self.commit(auth, &request, Some(&from)).await {
                Ok(tagged) => {
                    proxy::encode_answer(rack, id, AnswerRef::Commit(&tagged.answer, &tagged.tag))
                }
                Err(Unavailable::Refused(refusal)) => {
                    proxy::encode_answer(rack, id, AnswerRef::Refused(refusal))
                }
                Err(_) => proxy::encode_answer(rack, id, not_stored),
            },
            ProxyRequest::PrepareAndCommit(config) => {
                match self.prepare_and_commit(auth, &config, Some(&from)).await {
                    Ok(tagged) => proxy::encode_answer(
                        rack,
                        id,
                        AnswerRef::PrepareAndCommit(&tagged.answer, &tagged.tag),
                    ),
                    Err(Unavailable::Refused(refusal)) => {
                        proxy::encode_answer(rack, id, AnswerRef::Refused(refusal))
                    }
                    Err(_) => proxy::encode_answer(rack, id, not_stored),
                }
            }
            ProxyRequest::NodeStatus => match self.ctx.verify_request(auth, &NodeStatusQuery) {
                Ok(query) => {
                    let status = self.node.status(&self.ctx);
                    match self.ctx.tag_answer(&query, &status) {
                        Some(tag) => {
                            proxy::encode_answer(rack, id, AnswerRef::NodeStatus(&status, &tag))
                        }
                        None => Err(tq_core::wire::WireError::Malformed),
                    }
                }
                Err(refusal) => {
                    self.audit_refused_read(NexusCall::NodeStatus, Some(&from), refusal)
                        .await;
                    proxy::encode_answer(rack, id, AnswerRef::Refused(refusal))
                }
            },
        };
        match frame {
            Ok(frame) => match self.io.net.send(&from, frame) {
                Ok(()) => {}
                Err(SendError::Busy) => self.io.stats.send_busy(),
                Err(_) => self.io.stats.send_not_connected(),
            },
            Err(error) => tracing::error!(%error, "cannot encode a proxy answer"),
        }
    }

    /// Sends a proxied call to `to` and waits (in the table) for its
    /// answer.
    fn forward(
        &mut self,
        to: PlatformId,
        auth: &RequestAuth,
        request: ProxyRequest,
        deadline: Duration,
        reply: Reply<ProxyAnswer>,
    ) {
        if self.forwarded.len() >= self.max_proxied {
            self.io.stats.busy(Bound::ProxyTable);
            let _ = reply.send(Err(Unavailable::Busy(Bound::ProxyTable)));
            return;
        }
        let rack = self.rack().or(match &request {
            ProxyRequest::Commit(commit) => Some(commit.rack_id),
            ProxyRequest::PrepareAndCommit(config) => Some(config.rack_id()),
            ProxyRequest::NodeStatus => None,
        });
        let Some(rack) = rack else {
            let _ = reply.send(Err(Unavailable::NoRack));
            return;
        };
        let id = self.next_proxy_id;
        self.next_proxy_id = self.next_proxy_id.wrapping_add(1);
        let sent = proxy::encode_request(rack, id, auth, &request)
            .map_err(|_| Unavailable::Internal)
            .and_then(|frame| {
                self.io.net.send(&to, frame).map_err(|e| match e {
                    SendError::Busy => {
                        self.io.stats.busy(Bound::PeerQueue);
                        Unavailable::Busy(Bound::PeerQueue)
                    }
                    SendError::NotConnected | SendError::BadLength(_) => {
                        self.io.stats.proxied(ProxyOutcome::NotConnected);
                        Unavailable::NotConnected
                    }
                })
            });
        match sent {
            Ok(()) => {
                // Any caller's deadline is cut to the one limit, so the sum
                // stays within the clock; checked all the same, since this
                // task must not panic on what a caller gives it.
                let Some(deadline) = Instant::now().checked_add(deadline.min(MAX_DEADLINE)) else {
                    let _ = reply.send(Err(Unavailable::Internal));
                    return;
                };
                self.forwarded.insert(
                    id,
                    Forwarded {
                        to,
                        deadline,
                        reply,
                    },
                );
            }
            Err(unavailable) => {
                let _ = reply.send(Err(unavailable));
            }
        }
    }

    fn fail_forwarded(&mut self, which: impl Fn(&Forwarded) -> bool, outcome: ProxyOutcome) {
        let failed: Vec<u64> = self
            .forwarded
            .iter()
            .filter(|(_, call)| which(call))
            .map(|(id, _)| *id)
            .collect();
        for id in failed {
            if let Some(call) = self.forwarded.remove(&id) {
                self.io.stats.proxied(outcome);
                let error = match outcome {
                    ProxyOutcome::Disconnected => Unavailable::Disconnected,
                    ProxyOutcome::DeadlinePassed => Unavailable::DeadlinePassed,
                    ProxyOutcome::NotConnected => Unavailable::NotConnected,
                    ProxyOutcome::Answered => Unavailable::Internal,
                };
                let _ = call.reply.send(Err(error));
            }
        }
    }

    // ---- timers ----

    fn next_timer(&self) -> Option<Instant> {
        let retry = self.io.retry_at().filter(|_| !self.ctx.is_stored());
        let deadline = self.forwarded.values().map(|call| call.deadline).min();
        let widen = self.current_patience().and_then(|p| p.widen_at);
        retry.into_iter().chain(deadline).chain(widen).min()
    }

    /// Gives the secret load the node is collecting shares for, if it is
    /// new, [`NodeConfig::share_patience`] before it asks every member.
    fn start_patience(&mut self) {
        let Some(epoch) = self.node.loading() else {
            return;
        };
        if self.patience.is_none_or(|p| p.epoch != epoch) {
            self.patience = Some(LoadPatience {
                epoch,
                widen_at: Instant::now().checked_add(self.share_patience),
            });
        }
    }

    /// The patience of the load still collecting, if any.
    fn current_patience(&self) -> Option<LoadPatience> {
        self.patience
            .filter(|p| self.node.loading() == Some(p.epoch))
    }

    async fn on_timer(&mut self) {
        let now = Instant::now();
        if let Some(patience) = self.current_patience()
            && patience.widen_at.is_some_and(|at| at <= now)
        {
            tracing::info!(epoch = %patience.epoch, "secret load still waiting for shares: asking every member");
            self.patience = Some(LoadPatience {
                widen_at: None,
                ..patience
            });
            self.drive(|node, ctx, _| node.widen_secret_load(ctx)).await;
        }
        self.fail_forwarded(|call| call.deadline <= now, ProxyOutcome::DeadlinePassed);
        if !self.ctx.is_stored() && self.io.retry_at().is_some_and(|at| at <= now) {
            // Retry the write; once it succeeds the queued messages go.
            self.drive(|_, _, _| ()).await;
        }
    }

    // ---- reading ----

    fn storage(&self) -> StorageHealth {
        if self.ctx.is_stored() {
            StorageHealth::Stored
        } else {
            StorageHealth::Failing {
                attempts: self.io.failing(),
            }
        }
    }

    fn report(&self) -> NodeReport {
        let connected: HashSet<PlatformId> = self.io.net.connected().into_iter().collect();
        let stats = self.io.net.stats();
        let mut measurements = self.io.net.measurements();
        NodeReport {
            node: owned_status(self.node.status(&self.ctx)),
            storage: self.storage(),
            ledger: self.io.ledger.status(),
            peers: self
                .peers
                .iter()
                .map(|(id, addr)| PeerReport {
                    id: id.clone(),
                    addr: *addr,
                    connected: connected.contains(id),
                    stats: stats.peer(id),
                    measurements: measurements.remove(id).unwrap_or_default(),
                })
                .collect(),
            // Filled in by the handle, which holds the disks' board.
            disks: Vec::new(),
        }
    }

    fn snapshot(&self) -> Snapshot {
        let status = self.node.status(&self.ctx);
        Snapshot {
            sled: self.ctx.id().clone(),
            counters: *self.ctx.counters(),
            alarms: self.ctx.alarms().len(),
            latest_committed: status.state.latest_committed,
            secret_loaded: status.activity.secret_loaded,
            coordinating: status.activity.coordinating.map(|c| c.epoch),
            storage: self.storage(),
            ledger_status: self.io.ledger.status(),
            ledger: self.io.ledger.stats(),
            net: self.io.net.stats(),
            connected: self.io.net.connected().len(),
            shim: self.io.stats.snapshot(),
            proxied_in_flight: self.forwarded.len(),
            secret_waiters: self.waiters.len(),
            // Filled in by the handle, which holds the disks' board.
            disks: Vec::new(),
            audit: self.io.audit.stats(),
        }
    }

    // ---- the end ----

    async fn stop(mut self, reply: Option<Reply<()>>) {
        tracing::info!("node task stopping");
        for waiter in self.waiters.drain(..) {
            waiter.refuse(Unavailable::Stopped);
        }
        for (_, call) in std::mem::take(&mut self.forwarded) {
            let _ = call.reply.send(Err(Unavailable::Stopped));
        }
        let Task { io, .. } = self;
        io.net.shutdown().await;
        if let Some(reply) = reply {
            let _ = reply.send(Ok(()));
        }
    }
}

async fn wait_until(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => pending().await,
    }
}

/// The audit record of a secret load's answer (`Ok(None)`: shares are
/// still being collected, nothing handed out: no record).
fn secret_event(
    for_whom: SecretFor,
    asked: Option<Epoch>,
    loaded: Result<Option<&LoadedSecret>, &LoadSecretError>,
) -> Option<AuditEvent> {
    let (epoch, refused) = match loaded {
        Ok(None) => return None,
        Ok(Some(secret)) => (Some(secret.epoch()), None),
        Err(error) => (asked, Some(error.to_string())),
    };
    Some(AuditEvent::SecretLoad {
        for_whom,
        epoch: epoch.map(|e| e.0),
        refused,
    })
}
