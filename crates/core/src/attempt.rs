//! What one delivery attempt ended in, as recorded and shown in the attempt
//! log: typed here, spelled as stable strings on the wire and in storage.

macro_rules! spelled {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

spelled! {
    /// Why an attempt got no usable answer.
    AttemptError {
        Timeout = "timeout",
        ConnectionFailed = "connection_failed",
        InvalidUrl = "invalid_url",
        /// The response started but its body broke off.
        ResponseInterrupted = "response_interrupted",
        NetworkError = "network_error",
        /// No `stripe listen` session of the device was connected.
        ListenerDisconnected = "listener_disconnected",
        /// A live endpoint's host is, or resolves only to, an internal address.
        InternalAddress = "internal_address",
        /// The TLS handshake failed (no TLS on the port, untrusted or expired
        /// certificate…); the attempt's body records the reason.
        TlsError = "tls_error",
        /// Chaos mode failed the attempt on purpose; nothing was sent.
        ChaosFailure = "chaos_failure",
    }
}

spelled! {
    /// What happens after an attempt.
    NextAction {
        /// Delivered: nothing more.
        Done = "done",
        /// A resend's single extra attempt: it is not retried.
        OneShot = "one_shot",
        Retry = "retry",
        /// The schedule is exhausted.
        GiveUp = "give_up",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for e in AttemptError::ALL {
            assert_eq!(AttemptError::parse(e.as_str()), Some(*e));
        }
        for n in NextAction::ALL {
            assert_eq!(NextAction::parse(n.as_str()), Some(*n));
        }
        assert_eq!(NextAction::parse("later"), None);
    }
}
