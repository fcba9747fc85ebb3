//! Making one call the machine handed out: owned copies of the request and
//! the answer (so calls run concurrently on their own tasks), the route
//! (direct, then through proxies for a member call), the timeout, and
//! Nexus's authority: each attempt is authenticated for the target under
//! a fresh nonce, and its answer is checked against the target's key
//! before it is handed on.

use std::sync::Arc;
use std::time::Duration;

use tq_core::api::MAX_DEADLINE;
use tq_core::api::{
    CommitOutcome, CommitRequest, CoordinatorStatus, LrtqUpgradeMsg, PrepareAndCommitOutcome,
    ReconfigureMsg, ReconfigureOutcome,
};
use tq_core::authority::CoordinatorStatusQuery;
use tq_core::config::Configuration;
use tq_core::ids::PlatformId;
use tq_core::node::{CommitError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError};
use tq_nexus::{Answer, Call, CallKind, Method, status_ref};

use crate::authority::{Authority, Authorized};
use crate::sled::{CallFailure, FailureKind, Reply, SledApi};

/// A call's request, owned.
#[derive(Clone, Debug)]
pub(crate) enum Request {
    Reconfigure(Box<ReconfigureMsg>),
    Upgrade(Box<LrtqUpgradeMsg>),
    CoordinatorStatus,
    Commit(CommitRequest),
    PrepareAndCommit(Box<Configuration>),
}

impl Request {
    pub(crate) fn of(call: &Call<'_>) -> Self {
        match call.kind {
            CallKind::Reconfigure(msg) => Self::Reconfigure(Box::new(msg.clone())),
            CallKind::UpgradeFromLrtq(msg) => Self::Upgrade(Box::new(msg.clone())),
            CallKind::CoordinatorStatus => Self::CoordinatorStatus,
            CallKind::Commit(request) => Self::Commit(request),
            CallKind::PrepareAndCommit(config) => Self::PrepareAndCommit(Box::new(config.clone())),
        }
    }

    pub(crate) fn method(&self) -> Method {
        match self {
            Self::Reconfigure(_) => Method::Reconfigure,
            Self::Upgrade(_) => Method::UpgradeFromLrtq,
            Self::CoordinatorStatus => Method::CoordinatorStatus,
            Self::Commit(_) => Method::Commit,
            Self::PrepareAndCommit(_) => Method::PrepareAndCommit,
        }
    }

    /// Whether a sled can pass this call on (only the calls to members of
    /// a commit: the coordinator of a new epoch must be reachable).
    fn proxiable(&self) -> bool {
        matches!(self, Self::Commit(_) | Self::PrepareAndCommit(_))
    }
}

/// A node's answer, owned.
#[derive(Clone, Debug)]
pub(crate) enum Got {
    Reconfigure(Result<ReconfigureOutcome, ReconfigureError>),
    Upgrade(Result<(), LrtqUpgradeError>),
    CoordinatorStatus(Option<Box<CoordinatorStatus>>),
    Commit(Result<CommitOutcome, CommitError>),
    PrepareAndCommit(Result<PrepareAndCommitOutcome, PrepareAndCommitError>),
}

impl Got {
    pub(crate) fn answer(&self) -> Answer<'_> {
        match self {
            Self::Reconfigure(r) => Answer::Reconfigure(r.clone()),
            Self::Upgrade(r) => Answer::UpgradeFromLrtq(r.clone()),
            Self::CoordinatorStatus(s) => Answer::CoordinatorStatus(s.as_deref().map(status_ref)),
            Self::Commit(r) => Answer::Commit(r.clone()),
            Self::PrepareAndCommit(r) => Answer::PrepareAndCommit(r.clone()),
        }
    }
}

/// How a call went: the answer and who passed it on, or the last failure.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) result: Result<Got, CallFailure>,
    /// The proxy that passed the call on, if one did.
    pub(crate) via: Option<PlatformId>,
}

/// Where to send a call: the sled itself, if Nexus has a route, and the
/// sleds to try as proxies after it, in order (the one that worked last
/// time first, when `proxy_first`).
pub(crate) struct Route<S> {
    pub(crate) direct: Option<S>,
    pub(crate) proxies: Vec<(PlatformId, S)>,
    pub(crate) proxy_first: bool,
}

/// Makes `request` on `to` by `route`, each attempt bounded by `timeout`
/// and authenticated by `authority`.
pub(crate) async fn make<S: SledApi>(
    to: PlatformId,
    request: Request,
    route: Route<S>,
    timeout: Duration,
    authority: Arc<Authority>,
) -> Outcome {
    let mut last = CallFailure::new(FailureKind::NoRoute, "no address and no proxy");
    let proxies = if request.proxiable() {
        route.proxies
    } else {
        Vec::new()
    };
    let (first, rest) = match route.proxy_first {
        true => proxies
            .split_first()
            .map_or((None, &[][..]), |(p, r)| (Some(p), r)),
        false => (None, &proxies[..]),
    };
    let attempts = first
        .map(|(via, s)| (Some(via), s))
        .into_iter()
        .chain(route.direct.as_ref().map(|s| (None, s)))
        .chain(rest.iter().map(|(via, s)| (Some(via), s)));
    for (via, sled) in attempts {
        let attempt = async {
            match via {
                None => direct(sled, &authority, &to, &request).await,
                Some(_) => proxied(sled, &authority, &to, &request, timeout).await,
            }
        };
        let result = tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or_else(|_| Err(CallFailure::new(FailureKind::Timeout, "")));
        match result {
            Ok(got) => {
                return Outcome {
                    result: Ok(got),
                    via: via.cloned(),
                };
            }
            Err(failure) => {
                tracing::debug!(sled = %to, via = ?via.map(ToString::to_string),
                    method = request.method().name(), %failure, "call failed");
                last = match via {
                    Some(via) => CallFailure::new(failure.kind, format!("via {via}: {failure}")),
                    None => failure,
                };
            }
        }
    }
    Outcome {
        result: Err(last),
        via: None,
    }
}

/// Authenticates `body` for `to`, or fails the attempt before sending.
fn authorize<T: tq_core::authority::NexusRequest + ?Sized>(
    authority: &Authority,
    to: &PlatformId,
    body: &T,
) -> Reply<Authorized> {
    authority.authorize(to, body).map_err(CallFailure::from)
}

async fn direct<S: SledApi>(
    sled: &S,
    authority: &Authority,
    to: &PlatformId,
    request: &Request,
) -> Reply<Got> {
    Ok(match request {
        Request::Reconfigure(msg) => {
            let Authorized { auth, check } = authorize(authority, to, &**msg)?;
            Got::Reconfigure(check.accept(sled.reconfigure(auth, (**msg).clone()).await?)?)
        }
        Request::Upgrade(msg) => {
            let Authorized { auth, check } = authorize(authority, to, &**msg)?;
            Got::Upgrade(check.accept(sled.upgrade_from_lrtq(auth, (**msg).clone()).await?)?)
        }
        Request::CoordinatorStatus => {
            let Authorized { auth, check } = authorize(authority, to, &CoordinatorStatusQuery)?;
            let status = check.accept(sled.coordinator_status(auth).await?)?;
            Got::CoordinatorStatus(status.map(Box::new))
        }
        Request::Commit(r) => {
            let Authorized { auth, check } = authorize(authority, to, r)?;
            Got::Commit(check.accept(sled.commit(auth, *r).await?)?)
        }
        Request::PrepareAndCommit(c) => {
            let Authorized { auth, check } = authorize(authority, to, &**c)?;
            Got::PrepareAndCommit(
                check.accept(sled.prepare_and_commit(auth, (**c).clone()).await?)?,
            )
        }
    })
}

/// The deadline a proxy is given for a call the driver bounds by
/// `timeout`: a little inside it, so the proxy's answer, not the driver's
/// timer, says what happened, and never above what a sled accepts
/// ([`MAX_DEADLINE`]).
pub(crate) fn proxy_deadline(timeout: Duration) -> Duration {
    (timeout / 5 * 4).min(MAX_DEADLINE)
}

/// Through `via`, with [`proxy_deadline`]: authenticated for `to`, whose
/// tag the answer must carry (the proxy can alter neither).
async fn proxied<S: SledApi>(
    via: &S,
    authority: &Authority,
    to: &PlatformId,
    request: &Request,
    timeout: Duration,
) -> Reply<Got> {
    let deadline = proxy_deadline(timeout);
    Ok(match request {
        Request::Commit(r) => {
            let Authorized { auth, check } = authorize(authority, to, r)?;
            let tagged = via.proxy_commit(to.clone(), auth, *r, deadline).await?;
            Got::Commit(check.accept(tagged)?)
        }
        Request::PrepareAndCommit(c) => {
            let Authorized { auth, check } = authorize(authority, to, &**c)?;
            let tagged = via
                .proxy_prepare_and_commit(to.clone(), auth, (**c).clone(), deadline)
                .await?;
            Got::PrepareAndCommit(check.accept(tagged)?)
        }
        _ => {
            return Err(CallFailure::new(
                FailureKind::NoRoute,
                "only member calls are proxied",
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call timeout past what a sled accepts still gives proxies a
    /// deadline it accepts (four fifths of 100 s would be refused by
    /// every sled).
    #[test]
    fn proxy_deadlines_stay_within_what_sleds_accept() {
        assert_eq!(
            proxy_deadline(Duration::from_secs(10)),
            Duration::from_secs(8)
        );
        for secs in [75, 76, 100, 3600, u64::MAX] {
            let deadline = proxy_deadline(Duration::from_secs(secs));
            assert!(deadline <= MAX_DEADLINE, "{secs} s: {deadline:?}");
            assert!(
                deadline >= Duration::from_secs(59),
                "{secs} s: {deadline:?}"
            );
        }
        assert_eq!(proxy_deadline(Duration::MAX), MAX_DEADLINE);
    }
}
