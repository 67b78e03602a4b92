//! Contract checks for [`AccountStore`] backends.

use uuid::Uuid;

use super::ok;
use crate::{AccountStore, Error, Membership, UserRecord};

pub(super) fn user(username: &str) -> UserRecord {
    UserRecord {
        user_id: Uuid::new_v4(),
        username: username.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
        created_at_ms: 1_795_000_000_000,
    }
}

/// Runs every [`AccountStore`] check against `store`.
pub async fn account_store_contract<S: AccountStore + ?Sized>(store: &S) {
    users(store).await;
    concurrent_signups(store).await;
    memberships(store).await;
    membership_versions(store).await;
}

async fn users<S: AccountStore + ?Sized>(store: &S) {
    let ada = user(&format!("ada-{}", Uuid::new_v4()));
    ok(store.create_user(ada.clone()).await, "create user");
    let by_name = ok(store.user_by_name(&ada.username).await, "user by name");
    assert_eq!(by_name, Some(ada.clone()));
    assert_eq!(
        ok(store.user_by_id(ada.user_id).await, "user by id"),
        Some(ada.clone())
    );
    let impostor = user(&ada.username);
    let result = store.create_user(impostor.clone()).await;
    assert!(
        matches!(result, Err(Error::AlreadyExists(_))),
        "a taken username must be AlreadyExists, got {result:?}"
    );
    let by_name = ok(
        store.user_by_name(&ada.username).await,
        "user by name after dup",
    );
    assert_eq!(by_name, Some(ada.clone()), "the first user keeps the name");
    assert_eq!(
        ok(store.user_by_id(impostor.user_id).await, "impostor by id"),
        None
    );
    let unknown = format!("nobody-{}", Uuid::new_v4());
    assert_eq!(ok(store.user_by_name(&unknown).await, "unknown name"), None);
    assert_eq!(
        ok(store.user_by_id(Uuid::new_v4()).await, "unknown id"),
        None
    );
    assert_eq!(ok(store.user_by_name("").await, "empty name"), None);
    let result = store.create_user(user("")).await;
    assert!(
        matches!(result, Err(Error::InvalidArgument(_))),
        "an empty username must be InvalidArgument, got {result:?}"
    );
    // Names are compared exactly: the caller normalizes case.
    let upper = user(&ada.username.to_uppercase());
    ok(
        store.create_user(upper.clone()).await,
        "create differently cased name",
    );
    assert_eq!(
        ok(store.user_by_name(&upper.username).await, "upper"),
        Some(upper)
    );
}

async fn concurrent_signups<S: AccountStore + ?Sized>(store: &S) {
    let name = format!("race-{}", Uuid::new_v4());
    let create = || store.create_user(user(&name));
    let (r0, r1, r2, r3, r4, r5, r6, r7) = tokio::join!(
        create(),
        create(),
        create(),
        create(),
        create(),
        create(),
        create(),
        create()
    );
    let results = [r0, r1, r2, r3, r4, r5, r6, r7];
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        wins, 1,
        "exactly one of 8 concurrent signups wins: {results:?}"
    );
    for result in results.iter().filter(|r| r.is_err()) {
        assert!(
            matches!(result, Err(Error::AlreadyExists(_))),
            "losers get AlreadyExists, got {result:?}"
        );
    }
    let stored = ok(store.user_by_name(&name).await, "raced name");
    assert!(stored.is_some(), "the winner is stored");
}

pub(super) fn membership(list_id: Uuid, role: &str, title: &str) -> Membership {
    versioned(list_id, role, title, 1)
}

fn versioned(list_id: Uuid, role: &str, title: &str, version: u64) -> Membership {
    Membership {
        list_id,
        role: role.to_owned(),
        title: title.to_owned(),
        version,
    }
}

async fn memberships<S: AccountStore + ?Sized>(store: &S) {
    let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
    let mut lists: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    for (i, list) in lists.iter().enumerate() {
        let m = membership(*list, "owner", &format!("list {i}"));
        ok(store.put_membership(me, m).await, "put membership");
    }
    let mut expected: Vec<Membership> = lists
        .iter()
        .enumerate()
        .map(|(i, l)| membership(*l, "owner", &format!("list {i}")))
        .collect();
    expected.sort_by_key(|m| m.list_id);
    lists.sort();
    let all = ok(store.memberships(me, 100).await, "memberships");
    assert_eq!(all, expected, "memberships are ordered by list id");
    let capped = ok(store.memberships(me, 3).await, "memberships capped");
    assert_eq!(
        capped,
        expected.get(..3).map(<[_]>::to_vec).unwrap_or_default()
    );
    assert!(ok(store.memberships(me, 0).await, "limit 0").is_empty());
    assert!(ok(store.memberships(other, 100).await, "other user").is_empty());

    let (Some(first), Some(second)) = (lists.first().copied(), lists.get(1).copied()) else {
        panic!("five lists were created");
    };
    let replaced = membership(second, "viewer", "renamed");
    ok(store.put_membership(me, replaced.clone()).await, "replace");
    ok(store.remove_membership(me, first, 2).await, "remove");
    ok(
        store.remove_membership(me, Uuid::new_v4(), 1).await,
        "remove absent",
    );
    ok(
        store
            .put_membership(other, membership(first, "editor", "t"))
            .await,
        "put other",
    );
    let now = ok(store.memberships(me, 100).await, "memberships after edits");
    assert_eq!(now.len(), 4, "one removed, one replaced in place");
    assert_eq!(
        now.first(),
        Some(&replaced),
        "replacement keeps its position"
    );
    assert!(
        now.iter().all(|m| m.list_id != first),
        "removed entry is gone"
    );
    let theirs = ok(store.memberships(other, 100).await, "other after put");
    assert_eq!(
        theirs,
        vec![membership(first, "editor", "t")],
        "index is per user"
    );
}

/// Index writes are ordered by the list seq they reflect: a put or removal older than what is
/// stored is ignored, whatever order the writes arrive in. This is what keeps a late write from
/// a stopped list owner (a share still retrying when the list moved) from undoing a later
/// unshare (issue "Correctness hardening", item 5).
async fn membership_versions<S: AccountStore + ?Sized>(store: &S) {
    let user = Uuid::new_v4();
    let list = Uuid::new_v4();
    let read = || store.memberships(user, 100);
    ok(
        store
            .put_membership(user, versioned(list, "editor", "t", 5))
            .await,
        "share at 5",
    );
    ok(store.remove_membership(user, list, 7).await, "unshare at 7");
    ok(
        store
            .put_membership(user, versioned(list, "editor", "t", 6))
            .await,
        "late share at 6",
    );
    assert!(
        ok(read().await, "after late put").is_empty(),
        "a put older than the stored removal is ignored"
    );
    ok(
        store
            .put_membership(user, versioned(list, "viewer", "t2", 8))
            .await,
        "share again at 8",
    );
    ok(
        store.remove_membership(user, list, 7).await,
        "late unshare at 7",
    );
    assert_eq!(
        ok(read().await, "after late removal"),
        vec![versioned(list, "viewer", "t2", 8)],
        "a removal older than the stored entry is ignored"
    );
    ok(
        store
            .put_membership(user, versioned(list, "viewer", "t2", 8))
            .await,
        "same version again",
    );
    ok(
        store
            .put_membership(user, versioned(list, "editor", "t3", 4))
            .await,
        "stale put",
    );
    assert_eq!(
        ok(read().await, "after stale put"),
        vec![versioned(list, "viewer", "t2", 8)],
        "an equal version is idempotent and an older put changes nothing"
    );
    // Removals are skipped by `memberships` and do not count against its limit.
    let mut lists: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    lists.sort();
    let other = Uuid::new_v4();
    for (index, list) in lists.iter().enumerate() {
        let entry = versioned(*list, "owner", "x", 1);
        ok(store.put_membership(other, entry).await, "put for limit");
        if index % 2 == 0 {
            ok(
                store.remove_membership(other, *list, 2).await,
                "remove for limit",
            );
        }
    }
    let live: Vec<Uuid> = lists.iter().skip(1).step_by(2).copied().collect();
    let got = ok(store.memberships(other, 2).await, "limit over removals");
    assert_eq!(
        got.iter().map(|m| m.list_id).collect::<Vec<_>>(),
        live,
        "the limit counts live entries only"
    );
    let first = ok(store.memberships(other, 1).await, "limit 1 over removals");
    assert_eq!(first.len(), 1, "one live entry past a leading removal");
}
