//! What a user callback (`state`, `rx`, `tx`) returns (C `lws_ss_state_return_t`)

use thiserror::Error;

/// The verdict of a user callback
///
/// These codes never travel on the proxy wire; the numbers are the C values, kept for C
/// interop and logs. Apply a non-[`Ok`](Self::Ok) verdict to the stream with
/// [`StreamCore::handle_callback_return`](super::StreamCore::handle_callback_return).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum StateReturn {
    /// Carry on (0)
    #[default]
    Ok,
    /// From `tx` only: nothing to send this time, not even an empty frame (1)
    TxDontSend,
    /// Close the current connection but keep the stream (-1)
    DisconnectMe,
    /// Destroy the stream once the callback has returned (-2)
    DestroyMe,
}

impl StateReturn {
    /// The C value
    pub const fn as_i32(self) -> i32 {
        match self {
            Self::Ok => 0,
            Self::TxDontSend => 1,
            Self::DisconnectMe => -1,
            Self::DestroyMe => -2,
        }
    }
}

/// An integer that is not a callback return code
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{0} is not a secure streams callback return code")]
pub struct UnknownReturnCode(pub i32);

impl TryFrom<i32> for StateReturn {
    type Error = UnknownReturnCode;

    fn try_from(v: i32) -> Result<Self, Self::Error> {
        Ok(match v {
            0 => Self::Ok,
            1 => Self::TxDontSend,
            -1 => Self::DisconnectMe,
            -2 => Self::DestroyMe,
            _ => return Err(UnknownReturnCode(v)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_values_round_trip() {
        for (ret, v) in [
            (StateReturn::Ok, 0),
            (StateReturn::TxDontSend, 1),
            (StateReturn::DisconnectMe, -1),
            (StateReturn::DestroyMe, -2),
        ] {
            assert_eq!(ret.as_i32(), v);
            assert_eq!(StateReturn::try_from(v), Ok(ret));
        }
        // -3 was LWSSSSRET_SS_HANDLE_DESTROYED in 2020 development code only
        assert_eq!(StateReturn::try_from(-3), Err(UnknownReturnCode(-3)));
        assert_eq!(StateReturn::try_from(2), Err(UnknownReturnCode(2)));
    }
}
