//! Group buys (拼團) kept on write: openings claim a group id, joins are
//! kept whatever their order, and a group's completion instant is
//! re-derived from its head and its joins whenever either changes.
//!
//! A group's members are its opener (at the opening instant) and every
//! other user with a join at or after the opening and before the deadline
//! (each counted once, at its earliest such join). The group completes at
//! the instant its `target`-th member joined; an incomplete group has
//! expired once its deadline has passed (decided at query time, against the
//! instant the caller asks about: docs/social.md).

use super::engine::{bad_key, Engine, GroupEvent, SocialEvent};
use super::GroupHead;
use crate::codec;
use crate::error::{InputError, Problem, Result};
use crate::keys::social as k;
use crate::store::{decode_value, Cf};
use crate::timeline::GroupFacts;

impl Engine<'_> {
    fn head(&self, group_id: &str) -> Result<Option<GroupHead>> {
        let key = k::group(group_id);
        self.txn
            .get(&key)?
            .map(|v| decode_value(Cf::Social, &key, &v))
            .transpose()
    }

    fn put_head(
        &mut self,
        group_id: &str,
        head: Option<&GroupHead>,
        was: Option<&GroupHead>,
    ) -> Result<()> {
        if let Some(w) = was {
            self.txn
                .delete(k::group_day(self.day(w.opened_ms), group_id));
        }
        match head {
            Some(h) => {
                let bytes = codec::encode(h)?;
                self.txn
                    .put(k::group_day(self.day(h.opened_ms), group_id), bytes.clone());
                self.txn.put(k::group(group_id), bytes);
            }
            None => self.txn.delete(k::group(group_id)),
        }
        Ok(())
    }

    /// One recorded opening or join.
    pub(super) fn group_event(&mut self, e: &SocialEvent, g: &GroupFacts) -> Result<()> {
        match g.open {
            None => {
                self.txn
                    .put(k::join(&g.group_id, e.user_id, e.ts_ms, e.seq), Vec::new());
            }
            Some((target, deadline_ms)) => {
                let was = self.head(&g.group_id)?;
                let head = match &was {
                    None => GroupHead {
                        opener: e.user_id,
                        opened_ms: e.ts_ms,
                        target,
                        deadline_ms,
                        completed_ms: None,
                    },
                    // a replay of the opening: its earliest instant stays
                    Some(h)
                        if h.opener == e.user_id
                            && h.target == target
                            && h.deadline_ms == deadline_ms =>
                    {
                        GroupHead {
                            opened_ms: h.opened_ms.min(e.ts_ms),
                            ..*h
                        }
                    }
                    Some(_) => {
                        return Err(InputError::new(
                            "event.group_id",
                            Problem::Unparsable {
                                reason: format!(
                                    "group {:?} was opened by another user or with another target or deadline",
                                    g.group_id
                                ),
                            },
                        )
                        .at(e.index)
                        .into())
                    }
                };
                if was.as_ref() != Some(&head) {
                    self.put_head(&g.group_id, Some(&head), was.as_ref())?;
                }
            }
        }
        self.groups.insert(g.group_id.clone());
        Ok(())
    }

    /// A user leaving: its joins go, the groups it opened go (their joins
    /// stay, waiting for an opening).
    pub(super) fn leave_groups(&mut self, user_id: u32, events: &[GroupEvent]) -> Result<()> {
        for (g, ts_ms, seq) in events {
            match g.open {
                None => self.txn.delete(k::join(&g.group_id, user_id, *ts_ms, *seq)),
                Some(_) => {
                    let was = self.head(&g.group_id)?;
                    if was.is_some_and(|h| h.opener == user_id) {
                        self.put_head(&g.group_id, None, was.as_ref())?;
                    }
                }
            }
            self.groups.insert(g.group_id.clone());
        }
        Ok(())
    }

    /// Re-derives `group_id`'s completion from its head and joins.
    pub(super) fn settle_group(&mut self, group_id: &str) -> Result<()> {
        let Some(head) = self.head(group_id)? else {
            return Ok(());
        };
        let mut joins = Vec::new();
        for (key, _) in self.txn.scan_prefix(&k::joins_prefix(group_id))? {
            joins.push(k::parse_join(&key).ok_or_else(|| bad_key(&key))?);
        }
        let (members, _) = head.members(joins);
        let completed_ms = head.completion(&members);
        if completed_ms != head.completed_ms {
            let next = GroupHead {
                completed_ms,
                ..head
            };
            self.put_head(group_id, Some(&next), Some(&head))?;
        }
        Ok(())
    }
}
