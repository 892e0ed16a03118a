//! Grouping per-partition request entries under their topics: the shape
//! of every partitioned Kafka request (Produce, Fetch, ListOffsets,
//! OffsetCommit, AddPartitionsToTxn...).

/// `entries` (each with its topic's name) grouped by topic, topics in the
/// order they first appear and entries in their given order within each.
///
/// A request names few topics, so a linear search beats a map here.
pub(crate) fn by_topic<'a, E>(
    entries: impl IntoIterator<Item = (&'a str, E)>,
) -> Vec<(String, Vec<E>)> {
    let mut topics: Vec<(String, Vec<E>)> = Vec::new();
    for (topic, entry) in entries {
        match topics.iter_mut().find(|(name, _)| name == topic) {
            Some((_, group)) => group.push(entry),
            None => topics.push((topic.to_owned(), vec![entry])),
        }
    }
    topics
}

#[cfg(test)]
mod tests {
    use super::by_topic;

    #[test]
    fn topics_keep_their_first_order_and_entries_theirs() {
        let grouped = by_topic([("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5)]);
        assert_eq!(
            grouped,
            [
                ("b".to_owned(), vec![1, 3]),
                ("a".to_owned(), vec![2, 5]),
                ("c".to_owned(), vec![4]),
            ]
        );
        assert!(by_topic(Vec::<(&str, i32)>::new()).is_empty());
    }
}
