//! Queues that give back the room a burst made them take.

use std::collections::VecDeque;

/// Room an emptied queue keeps: enough for the steady state's handful of packets and events. A
/// burst (a formed overlay restored at once: a thousand member events per view; a crash's
/// downs) otherwise left every queue of every view at its peak for good, 127 of 663 bytes per
/// pair of members in the simulator at 1,000 supernodes (heaptrack).
pub(crate) const ROOM_KEPT: usize = 64;

/// Pops the front of `queue`; once it is empty, gives back what it holds beyond [`ROOM_KEPT`].
pub(crate) fn pop_front_shrinking<T>(queue: &mut VecDeque<T>) -> Option<T> {
    let front = queue.pop_front();
    if front.is_none() && queue.capacity() > ROOM_KEPT {
        queue.shrink_to(ROOM_KEPT);
    }
    front
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_drained_after_a_burst_gives_back_its_room_and_keeps_its_order() {
        let mut queue: VecDeque<u32> = (0..10_000).collect();
        let drained: Vec<u32> = std::iter::from_fn(|| pop_front_shrinking(&mut queue)).collect();
        assert_eq!(drained, (0..10_000).collect::<Vec<u32>>());
        assert!(queue.capacity() <= 2 * ROOM_KEPT, "{}", queue.capacity());
        // A queue that never grew past the room is left alone.
        let mut small: VecDeque<u32> = VecDeque::with_capacity(ROOM_KEPT);
        small.push_back(1);
        let room = small.capacity();
        while pop_front_shrinking(&mut small).is_some() {}
        assert_eq!(small.capacity(), room);
    }
}
