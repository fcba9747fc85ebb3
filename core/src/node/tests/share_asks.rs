//! Whom a secret load asks for shares: as many connected members as it
//! needs, the next ones after itself; another when one of them
//! disconnects first; everyone once the caller widens it.

use super::*;

/// The sleds (by index) that `sled`'s sent messages asked for a share,
/// taking the messages.
fn asked(sled: &mut Sled) -> Vec<usize> {
    let mut asked: Vec<usize> = sled
        .drain()
        .into_iter()
        .filter(|(_, bytes)| {
            matches!(
                wire::decode_peer_msg(bytes).unwrap().body,
                Body::GetShare(_)
            )
        })
        .map(|(to, _)| (0..32).find(|&i| platform(i) == to).unwrap())
        .collect();
    asked.sort_unstable();
    asked
}

/// Member `member` answers `asker`'s ask with its share of epoch 1.
fn answer(sleds: &mut [Sled], asker: usize, member: usize) {
    let share = share_of(&sleds[member], 1);
    let from = platform(member);
    sleds[asker].receive(
        &from,
        &msg(Body::Share {
            epoch: Epoch(1),
            share,
        }),
    );
}

/// A rack of `n` with epoch 1 committed, nothing in flight and no secret
/// cached anywhere.
fn quiet_rack(n: usize, k: u8) -> Vec<Sled> {
    let mut sleds = committed_rack(n, k);
    for sled in &mut sleds {
        sled.call(|node, _, _| node.clear_secrets());
        sled.drain();
    }
    sleds
}

#[test]
fn a_load_asks_the_members_after_itself_for_only_the_shares_it_lacks() {
    let mut sleds = quiet_rack(8, 5);
    // Sled 5 holds one share and needs four: those of 6, 7, 0 and 1.
    assert!(sleds[5].load(1).unwrap().is_none());
    assert_eq!(asked(&mut sleds[5]), [0, 1, 6, 7]);
    // Each answers; the load needs nothing more.
    for i in [6, 7, 0, 1] {
        sleds[5].drain();
        answer(&mut sleds, 5, i);
        assert_eq!(asked(&mut sleds[5]), [] as [usize; 0]);
    }
    assert!(sleds[5].load(1).unwrap().is_some());
}

#[test]
fn a_member_that_disconnects_before_answering_is_replaced_and_asked_again_when_back() {
    let mut sleds = quiet_rack(6, 3);
    assert!(sleds[4].load(1).unwrap().is_none());
    assert_eq!(asked(&mut sleds[4]), [0, 5]);
    // Sled 5's answer will not come on that connection: sled 1 is next.
    sleds[4].disconnect(&platform(5));
    assert_eq!(asked(&mut sleds[4]), [1]);
    // Sled 1 answers; two asks were one too many, so 5's return asks
    // nobody.
    answer(&mut sleds, 4, 1);
    sleds[4].connect(&platform(5));
    assert_eq!(asked(&mut sleds[4]), [] as [usize; 0]);
    // Sled 0 drops off too: 5 is asked again, on its new connection.
    sleds[4].disconnect(&platform(0));
    assert_eq!(asked(&mut sleds[4]), [5]);
    answer(&mut sleds, 4, 5);
    assert!(sleds[4].load(1).unwrap().is_some());
    assert_eq!(anomalies(&sleds), 0);
}

#[test]
fn a_silent_member_holds_a_load_up_until_the_caller_widens_it() {
    let mut sleds = quiet_rack(5, 3);
    assert!(sleds[0].load(1).unwrap().is_none());
    assert_eq!(asked(&mut sleds[0]), [1, 2]);
    // Sled 2 answers, sled 1 stays silent (connected: nothing tells the
    // core it will not answer).
    answer(&mut sleds, 0, 2);
    assert!(sleds[0].load(1).unwrap().is_none());
    assert_eq!(asked(&mut sleds[0]), [] as [usize; 0]);
    // The caller's patience ran out: everyone not asked yet is asked,
    // once; sled 1 is not asked twice.
    sleds[0].call(|node, ctx, _| node.widen_secret_load(ctx));
    assert_eq!(asked(&mut sleds[0]), [3, 4]);
    sleds[0].call(|node, ctx, _| node.widen_secret_load(ctx));
    assert_eq!(asked(&mut sleds[0]), [] as [usize; 0]);
    answer(&mut sleds, 0, 3);
    assert!(sleds[0].load(1).unwrap().is_some());
    // Widened, a load asks every member as it connects.
    sleds[0].call(|node, _, _| node.clear_secrets());
    sleds[0].drain();
    for i in 1..5 {
        sleds[0].disconnect(&platform(i));
    }
    assert!(sleds[0].load(1).unwrap().is_none());
    assert_eq!(asked(&mut sleds[0]), [] as [usize; 0]);
    sleds[0].call(|node, ctx, _| node.widen_secret_load(ctx));
    for i in 1..5 {
        sleds[0].connect(&platform(i));
    }
    assert_eq!(asked(&mut sleds[0]), [1, 2, 3, 4]);
}

#[test]
fn a_whole_rack_loading_at_once_sends_each_sled_k_minus_one_asks() {
    let mut sleds = quiet_rack(8, 5);
    for sled in &mut sleds {
        assert!(sled.load(1).unwrap().is_none());
    }
    let mut asked_of = [0usize; 8];
    let mut in_flight = Vec::new();
    for sled in &mut sleds {
        let from = sled.id();
        for (to, bytes) in sled.drain() {
            let i = (0..8).find(|&i| platform(i) == to).unwrap();
            asked_of[i] += 1;
            in_flight.push((from.clone(), to, bytes));
        }
    }
    // 8 sleds ask 4 each, and every sled is asked by 4: the load is spread.
    assert_eq!(asked_of, [4; 8]);
    for (from, to, bytes) in in_flight {
        deliver(&mut sleds, &from, &to, &bytes);
    }
    settle(&mut sleds);
    let secrets: Vec<RackSecret> = sleds
        .iter_mut()
        .map(|s| s.load(1).unwrap().expect("loaded"))
        .collect();
    assert_all_equal(&secrets);
    assert_eq!(anomalies(&sleds), 0);
}
