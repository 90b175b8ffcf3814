//! Stream management (XEP-0198) as plain state: what we received (`h`), what we sent and the
//! server has not acknowledged yet, and what to send again after a resumption or a new
//! session. No I/O: the client's owner task feeds it and writes what it says.

use std::collections::VecDeque;

use minidom::Element;

/// Ask the server for an acknowledgement every this many unacknowledged stanzas.
const ACK_EVERY: usize = 8;

#[derive(Debug, Default)]
pub(crate) struct StreamManagement {
    /// On for the current connection.
    pub(crate) enabled: bool,
    /// The id to resume the current session with, when the server allows resumption.
    pub(crate) id: Option<String>,
    /// Stanzas received (our `h`).
    inbound: u32,
    /// Stanzas sent in this session, as the server counts them.
    outbound: u32,
    /// Stanzas sent and not acknowledged yet, oldest first.
    unacked: VecDeque<Element>,
}

impl StreamManagement {
    /// A stanza came in.
    pub(crate) fn received(&mut self) {
        self.inbound = self.inbound.wrapping_add(1);
    }

    /// What we answer to the server's `<r/>`, and offer when resuming: the stanzas received.
    pub(crate) fn h(&self) -> u32 {
        self.inbound
    }

    /// A stanza goes out (kept until acknowledged). True when it is time to ask for an
    /// acknowledgement, so the queue stays short.
    pub(crate) fn sending(&mut self, el: &Element) -> bool {
        if !self.enabled {
            return false;
        }
        self.outbound = self.outbound.wrapping_add(1);
        self.unacked.push_back(el.clone());
        self.unacked.len().is_multiple_of(ACK_EVERY)
    }

    /// The server's `<a h='…'/>`: everything up to `h` is safe on the server. Counts wrap
    /// (XEP-0198): an `h` less than half the counter's range ahead of what we sent is a
    /// confused server acknowledging more than we sent, which clears the queue and no more.
    pub(crate) fn acknowledged(&mut self, h: u32) {
        let still_unacked = self.outbound.wrapping_sub(h);
        if still_unacked > u32::MAX / 2 {
            self.unacked.clear();
            return;
        }
        while self.unacked.len() > still_unacked as usize {
            self.unacked.pop_front();
        }
    }

    /// The session was resumed and the server had received `h` of ours: what it lacks, oldest
    /// first, to send again.
    pub(crate) fn resumed(&mut self, h: u32) -> Vec<Element> {
        let unacked: Vec<Element> = self.unacked.drain(..).collect();
        let lost = (self.outbound.wrapping_sub(h) as usize).min(unacked.len());
        let received = unacked.len() - lost;
        self.outbound = h;
        unacked.into_iter().skip(received).collect()
    }

    /// A new session (the old one is gone): counters start over; of what the old session had
    /// not confirmed, the messages are worth sending again (oldest first); presence belongs to
    /// the application's rejoin and requests were lost with the session.
    pub(crate) fn new_session(&mut self, enabled: bool, id: Option<String>) -> Vec<Element> {
        self.enabled = enabled;
        self.id = id;
        self.inbound = 0;
        self.outbound = 0;
        self.unacked
            .drain(..)
            .filter(|el| el.name() == "message")
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stanza(name: &str, n: u32) -> Element {
        format!("<{name} xmlns='jabber:client' id='{n}'/>")
            .parse()
            .unwrap()
    }

    fn ids(els: &[Element]) -> Vec<String> {
        els.iter()
            .map(|e| format!("{}{}", e.name(), e.attr("id").unwrap_or("?")))
            .collect()
    }

    #[test]
    fn acknowledged_stanzas_are_forgotten_and_acks_are_asked_every_eight() {
        let mut sm = StreamManagement {
            enabled: true,
            ..Default::default()
        };
        let asked: Vec<bool> = (1..=9).map(|n| sm.sending(&stanza("message", n))).collect();
        assert_eq!(asked.iter().filter(|a| **a).count(), 1);
        assert!(asked[7], "the 8th unacknowledged stanza asks");
        sm.acknowledged(5);
        assert_eq!(sm.unacked.len(), 4);
        // A stale ack changes nothing; one beyond what we sent clears everything, no more.
        sm.acknowledged(3);
        assert_eq!(sm.unacked.len(), 4);
        sm.acknowledged(9);
        assert!(sm.unacked.is_empty());
        // A server acknowledging more than we sent: the queue clears, nothing else happens.
        sm.sending(&stanza("message", 10));
        sm.sending(&stanza("message", 11));
        sm.acknowledged(1000);
        assert!(sm.unacked.is_empty());
        for _ in 0..3 {
            sm.received();
        }
        assert_eq!(sm.h(), 3);
    }

    #[test]
    fn counters_wrap_around_as_the_protocol_says() {
        let mut sm = StreamManagement {
            enabled: true,
            outbound: u32::MAX - 1,
            inbound: u32::MAX,
            ..Default::default()
        };
        sm.received();
        assert_eq!(sm.h(), 0);
        sm.sending(&stanza("message", 1));
        sm.sending(&stanza("message", 2));
        sm.sending(&stanza("message", 3));
        // outbound went MAX-1 → MAX → 0 → 1; the server acknowledges up to 0 (two of three).
        sm.acknowledged(0);
        assert_eq!(
            ids(&sm.unacked.iter().cloned().collect::<Vec<_>>()),
            ["message3"]
        );
    }

    #[test]
    fn a_resumed_session_gets_exactly_what_the_server_lacks() {
        let mut sm = StreamManagement {
            enabled: true,
            ..Default::default()
        };
        for n in 1..=5 {
            sm.sending(&stanza(if n == 3 { "iq" } else { "message" }, n));
        }
        sm.acknowledged(1);
        // The server says it had 3 when we resume: 4 and 5 go again, in order.
        assert_eq!(ids(&sm.resumed(3)), ["message4", "message5"]);
        assert!(sm.unacked.is_empty());
        sm.sending(&stanza("message", 6));
        sm.acknowledged(4);
        assert!(
            sm.unacked.is_empty(),
            "counting goes on from the server's h"
        );
    }

    #[test]
    fn a_new_session_sends_messages_again_and_nothing_else() {
        let mut sm = StreamManagement {
            enabled: true,
            id: Some("old".into()),
            ..Default::default()
        };
        sm.sending(&stanza("message", 1));
        sm.sending(&stanza("presence", 2));
        sm.sending(&stanza("iq", 3));
        sm.sending(&stanza("message", 4));
        sm.received();
        assert_eq!(ids(&sm.new_session(false, None)), ["message1", "message4"]);
        assert_eq!((sm.h(), sm.outbound, sm.id.clone()), (0, 0, None));
        assert!(!sm.sending(&stanza("message", 5)), "off: nothing kept");
        assert!(sm.unacked.is_empty());
    }

    #[test]
    fn nothing_is_kept_while_stream_management_is_off() {
        let mut sm = StreamManagement::default();
        assert!(!sm.sending(&stanza("message", 1)));
        assert!(sm.unacked.is_empty());
        assert!(sm.resumed(0).is_empty());
    }
}
