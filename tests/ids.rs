//! Request ids (model weakness W9): user ids are kept exactly as given, a
//! duplicate pending user id is refused and handed back, automatic ids are
//! unique and never collide with user ids, and `make_requests` ids are known
//! before anything is submitted.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{self};
use std::thread;

use callpool::{make_requests, PutError, RequestId, TaskError, ThreadPool, WorkRequest};

mod common;
use common::*;

// W9: a user id is kept exactly as given (no hashing, no truncation): the
// id `put_request` returns and the id the result or error callback gets are
// that number, marked user-chosen.
#[test]
fn user_ids_are_kept_exactly_as_given() -> TestResult {
    let pool = ThreadPool::new(2);
    let (tx, rx) = mpsc::channel();
    let given = [0, 1, 42, 1 << 63, u64::MAX - 1, u64::MAX];
    let mut returned = Vec::new();
    for (i, &number) in given.iter().enumerate() {
        let (tx_ok, tx_err) = (tx.clone(), tx.clone());
        let request = WorkRequest::fallible(|i: usize| if i % 2 == 0 { Ok(i) } else { Err(i) }, i)
            .with_id(number)
            .on_result(move |id, _| tx_ok.send(id).unwrap())
            .on_error(move |id, _| tx_err.send(id).unwrap());
        let id = pool.put_request(request)?;
        assert_eq!(id.value(), number);
        assert!(id.is_user_chosen());
        assert_eq!(id.to_string(), number.to_string());
        returned.push(id);
    }

    assert_eq!(pool.wait_timeout(HANG), Ok(given.len()));
    let mut seen: Vec<RequestId> = rx.try_iter().collect();
    seen.sort();
    returned.sort();
    assert_eq!(seen, returned);
    Ok(())
}

// W9: a second pending request with the same user id is refused with
// DuplicateId from every put method, handed back intact (its id and
// callbacks), and accepted once the first one has been handled.
#[test]
fn a_duplicate_pending_user_id_is_refused_and_handed_back() -> TestResult {
    let pool = ThreadPool::new(1);
    let (tx, rx) = mpsc::channel();
    let (first, latch) = gate();
    let t = tx.clone();
    let id = pool.put_request(
        WorkRequest::new(
            move |x: &str| {
                latch.hold();
                x
            },
            "first",
        )
        .with_id(7)
        .on_result(move |id, x| t.send((id, x)).unwrap()),
    )?;
    first.await_start();

    let duplicate: WorkRequest = WorkRequest::new(|x: &str| x, "second")
        .with_id(7)
        .on_result(move |id, x| tx.send((id, x)).unwrap())
        .into();
    let err = pool.put_request(duplicate).expect_err("id 7 is pending");
    assert!(matches!(err, PutError::DuplicateId(_)), "{err:?}");
    let err = pool
        .try_put_request(err.into_request())
        .expect_err("id 7 is pending");
    assert!(matches!(err, PutError::DuplicateId(_)), "{err:?}");
    let err = pool
        .put_request_timeout(err.into_request(), HANG)
        .expect_err("id 7 is pending");
    assert!(matches!(err, PutError::DuplicateId(_)), "{err:?}");
    let duplicate = err.into_request();
    assert_eq!(duplicate.id(), id);
    assert_eq!(pool.pending(), 1, "a refused request is not pending");

    first.open();
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    assert_eq!(rx.try_recv()?, (id, "first"));
    assert_eq!(pool.put_request(duplicate)?, id);
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    assert_eq!(rx.try_recv()?, (id, "second"));
    Ok(())
}

// Duplicates are checked per handle: the same user id may be pending on two
// handles of one pool, and each handle reports its own.
#[test]
fn the_same_user_id_may_be_pending_on_two_handles() -> TestResult {
    let a = ThreadPool::new(2);
    let b = a.new_handle();
    let (first, latch) = gate();
    let id_a = a.put_request(
        WorkRequest::new(
            move |x: u32| {
                latch.hold();
                x
            },
            1,
        )
        .with_id(5),
    )?;
    first.await_start();
    let id_b = b.put_request(WorkRequest::new(|x: u32| x, 2).with_id(5))?;
    assert_eq!(id_a, id_b);
    assert_eq!(b.wait_timeout(HANG), Ok(1));
    first.open();
    assert_eq!(a.wait_timeout(HANG), Ok(1));
    Ok(())
}

// W9: automatic ids are unique, even when made on several threads at once
// and by both `WorkRequest::new` and `make_requests`; none is user-chosen.
#[test]
fn automatic_ids_are_unique() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 25_000;
    let ids: Vec<RequestId> = thread::scope(|s| {
        let makers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    let mut ids = Vec::with_capacity(PER_THREAD);
                    for _ in 0..PER_THREAD / 2 {
                        let request: WorkRequest = WorkRequest::new(|x: u8| x, 0).into();
                        ids.push(request.id());
                    }
                    let batch =
                        make_requests(|x: usize| x, 0..PER_THREAD / 2, |_, _| {}, |_, _| {});
                    ids.extend(batch.iter().map(WorkRequest::id));
                    ids
                })
            })
            .collect();
        makers.into_iter().flat_map(|m| m.join().unwrap()).collect()
    });

    assert_eq!(ids.len(), THREADS * PER_THREAD);
    assert!(ids.iter().all(|id| !id.is_user_chosen()));
    let unique: HashSet<RequestId> = ids.into_iter().collect();
    assert_eq!(unique.len(), THREADS * PER_THREAD);
}

// W9: an automatic id and a user id with the same number are different ids:
// both can be pending on one handle, and each callback gets its own.
#[test]
fn an_automatic_and_a_user_id_with_the_same_number_do_not_collide() -> TestResult {
    let pool = ThreadPool::new(1);
    let (tx, rx) = mpsc::channel();
    let (first, latch) = gate();
    let t = tx.clone();
    let auto = pool.put_request(
        WorkRequest::new(
            move |x: &str| {
                latch.hold();
                x
            },
            "auto",
        )
        .on_result(move |id, x| t.send((id, x)).unwrap()),
    )?;
    assert!(!auto.is_user_chosen());
    first.await_start();

    let user = pool.put_request(
        WorkRequest::new(|x: &str| x, "user")
            .with_id(auto.value())
            .on_result(move |id, x| tx.send((id, x)).unwrap()),
    )?;
    assert!(user.is_user_chosen());
    assert_eq!(user.value(), auto.value());
    assert_ne!(user, auto);
    assert_eq!(pool.pending(), 2);

    first.open();
    assert_eq!(pool.wait_timeout(HANG), Ok(2));
    let seen: HashMap<RequestId, &str> = rx.try_iter().collect();
    assert_eq!(seen, HashMap::from([(auto, "auto"), (user, "user")]));
    Ok(())
}

// The ids of `make_requests` are known before submission; `put_request`
// returns that same id and the callbacks of each item get it.
#[test]
fn make_requests_ids_are_known_before_submission() -> TestResult {
    let pool = ThreadPool::new(3);
    let (tx, rx) = mpsc::channel();
    let (err_tx, err_rx) = mpsc::channel();
    let requests = make_requests(
        |n: usize| -> usize {
            if n % 10 == 9 {
                panic!("deliberate panic for item {n}");
            }
            n
        },
        0..100,
        move |id, n| tx.send((id, n)).unwrap(),
        move |id, err: TaskError| err_tx.send((id, err)).unwrap(),
    );
    let ids: Vec<RequestId> = requests.iter().map(WorkRequest::id).collect();
    for (request, &id) in requests.into_iter().zip(&ids) {
        assert_eq!(pool.put_request(request)?, id);
    }

    assert_eq!(pool.wait_timeout(HANG), Ok(100));
    let results: HashMap<RequestId, usize> = rx.try_iter().collect();
    let errors: HashMap<RequestId, TaskError> = err_rx.try_iter().collect();
    assert_eq!((results.len(), errors.len()), (90, 10));
    for (n, id) in ids.iter().enumerate() {
        if n % 10 == 9 {
            let expected = TaskError::Panicked(format!("deliberate panic for item {n}"));
            assert_eq!(errors.get(id), Some(&expected), "item {n}");
        } else {
            assert_eq!(results.get(id), Some(&n), "item {n}");
        }
    }
    Ok(())
}
