//! Group commit: the writes of concurrent callers gathered into one transaction.
//!
//! SQLite has one writer, and every commit costs the same whether it carries one row or a
//! hundred. A [`GroupCommit`] hands each caller's item to one task, which writes whatever has
//! queued up meanwhile in a single call to the store (one transaction), then answers every
//! caller. Nothing waits on purpose: while one batch commits, the next one gathers, so a lone
//! caller pays one commit and a crowd shares theirs. A caller is answered only after its batch
//! committed, so an acknowledged write is as durable as a write of its own.
//!
//! When a batch fails as a whole, its items are written again one at a time, so that one bad
//! item costs only its own caller an error.

use crate::store::{StoreError, StoreResult};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

type Waiter<R> = oneshot::Sender<StoreResult<R>>;

pub struct GroupCommit<T, R> {
    queue: mpsc::Sender<(T, Waiter<R>)>,
}

impl<T, R> Clone for GroupCommit<T, R> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<T, R> GroupCommit<T, R>
where
    T: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    /// Starts the writing task (call within a tokio runtime). `write` stores a batch, all or
    /// nothing, and returns one result per item, in order. The task ends when the last handle
    /// is dropped.
    pub fn spawn<F, Fut>(max_batch: usize, write: F) -> Self
    where
        F: Fn(Arc<[T]>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = StoreResult<Vec<R>>> + Send + 'static,
    {
        let max_batch = max_batch.max(1);
        let (queue, mut rx) = mpsc::channel::<(T, Waiter<R>)>(max_batch * 4);
        tokio::spawn(async move {
            let mut items = Vec::with_capacity(max_batch);
            let mut waiters = Vec::with_capacity(max_batch);
            while let Some((item, waiter)) = rx.recv().await {
                items.push(item);
                waiters.push(waiter);
                while items.len() < max_batch {
                    match rx.try_recv() {
                        Ok((item, waiter)) => {
                            items.push(item);
                            waiters.push(waiter);
                        }
                        Err(_) => break,
                    }
                }
                let batch: Arc<[T]> = std::mem::take(&mut items).into();
                let results = match run(&write, batch.clone()).await {
                    Ok(results) if results.len() == batch.len() => {
                        results.into_iter().map(Ok).collect()
                    }
                    Ok(_) => lost(batch.len(), "the store answered a batch with a wrong count"),
                    Err(e) if batch.len() == 1 => vec![Err(e)],
                    Err(_) => {
                        // Find the culprit: each item on its own.
                        let mut one_by_one = Vec::with_capacity(batch.len());
                        for item in batch.iter() {
                            let single: Arc<[T]> = Arc::from(vec![item.clone()]);
                            one_by_one.push(match run(&write, single).await {
                                Ok(mut r) if r.len() == 1 => Ok(r.pop().expect("one result")),
                                Ok(_) => Err(StoreError::Backend(
                                    "the store answered a batch with a wrong count".into(),
                                )),
                                Err(e) => Err(e),
                            });
                        }
                        one_by_one
                    }
                };
                for (waiter, result) in waiters.drain(..).zip(results) {
                    let _ = waiter.send(result);
                }
            }
        });
        Self { queue }
    }

    /// Writes `item` with whatever else is queued, and returns its result once committed.
    pub async fn submit(&self, item: T) -> StoreResult<R> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .send((item, tx))
            .await
            .map_err(|_| StoreError::Backend("the write queue has stopped".into()))?;
        rx.await
            .unwrap_or_else(|_| Err(StoreError::Backend("the write batch was lost".into())))
    }
}

/// Runs one write in its own task, so that a panic costs that batch, not the queue.
async fn run<T, R, F, Fut>(write: &F, batch: Arc<[T]>) -> StoreResult<Vec<R>>
where
    F: Fn(Arc<[T]>) -> Fut,
    Fut: Future<Output = StoreResult<Vec<R>>> + Send + 'static,
    R: Send + 'static,
{
    tokio::spawn(write(batch))
        .await
        .unwrap_or_else(|_| Err(StoreError::Backend("the write batch failed".into())))
}

fn lost<R>(n: usize, why: &str) -> Vec<StoreResult<R>> {
    (0..n)
        .map(|_| Err(StoreError::Backend(why.into())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn concurrent_items_share_batches_and_each_gets_its_own_answer() {
        let batches = Arc::new(Mutex::new(Vec::<usize>::new()));
        let seen = batches.clone();
        let gc = GroupCommit::spawn(16, move |items: Arc<[u32]>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(items.len());
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                Ok(items.iter().map(|i| i * 10).collect())
            }
        });
        let tasks: Vec<_> = (0..100u32)
            .map(|i| {
                let gc = gc.clone();
                tokio::spawn(async move { (i, gc.submit(i).await.unwrap()) })
            })
            .collect();
        for t in tasks {
            let (i, r) = t.await.unwrap();
            assert_eq!(r, i * 10);
        }
        let batches = batches.lock().unwrap();
        assert_eq!(batches.iter().sum::<usize>(), 100);
        assert!(batches.iter().all(|&n| n <= 16));
        assert!(batches.len() < 100, "items were grouped: {batches:?}");
    }

    #[tokio::test]
    async fn a_failing_batch_is_retried_item_by_item_and_a_panic_does_not_stop_the_queue() {
        let gc = GroupCommit::spawn(64, |items: Arc<[i32]>| async move {
            if items.contains(&-1) {
                if items.len() == 1 {
                    panic!("a bad item");
                }
                return Err(StoreError::Backend("batch refused".into()));
            }
            Ok(items.to_vec())
        });
        let tasks: Vec<_> = [1, 2, -1, 3]
            .into_iter()
            .map(|i| {
                let gc = gc.clone();
                tokio::spawn(async move { (i, gc.submit(i).await) })
            })
            .collect();
        for t in tasks {
            let (i, r) = t.await.unwrap();
            if i == -1 {
                assert!(r.is_err());
            } else {
                assert_eq!(r.unwrap(), i);
            }
        }
        assert_eq!(gc.submit(7).await.unwrap(), 7, "the queue still runs");
    }
}
