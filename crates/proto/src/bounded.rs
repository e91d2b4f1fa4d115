//! Collections and strings whose size limit is part of their type.
//!
//! Decoding rejects an oversized value while reading it, element by element, so a hostile length
//! prefix never makes us hold more than the limit; encoding can only produce what decoding
//! accepts, because the constructors check the same limit.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value was longer than its type allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{got} items where at most {max} are allowed")]
pub struct TooLong {
    /// The limit.
    pub max: usize,
    /// What was offered.
    pub got: usize,
}

/// A `Vec<T>` holding at most `N` elements.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct BoundedVec<T, const N: usize>(Vec<T>);

impl<T, const N: usize> BoundedVec<T, N> {
    /// The limit of this type.
    pub const MAX: usize = N;

    /// An empty vector.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Appends `item`, or gives it back if the vector is full.
    pub fn try_push(&mut self, item: T) -> Result<(), T> {
        if self.0.len() >= N {
            return Err(item);
        }
        self.0.push(item);
        Ok(())
    }

    /// Builds from an iterator, keeping only the first `N` elements.
    pub fn truncating(items: impl IntoIterator<Item = T>) -> Self {
        Self(items.into_iter().take(N).collect())
    }

    /// The elements, as a plain vector.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T, const N: usize> TryFrom<Vec<T>> for BoundedVec<T, N> {
    type Error = TooLong;

    fn try_from(items: Vec<T>) -> Result<Self, TooLong> {
        if items.len() > N {
            return Err(TooLong {
                max: N,
                got: items.len(),
            });
        }
        Ok(Self(items))
    }
}

impl<T, const N: usize> Deref for BoundedVec<T, N> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: fmt::Debug, const N: usize> fmt::Debug for BoundedVec<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl<'a, T, const N: usize> IntoIterator for &'a BoundedVec<T, N> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T: Serialize, const N: usize> Serialize for BoundedVec<T, N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for BoundedVec<T, N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoundedVisitor<T, const N: usize>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for BoundedVisitor<T, N> {
            type Value = BoundedVec<T, N>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a sequence of at most {N} elements")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // Trust the announced length only as far as the limit: a hostile prefix of
                // 2^32 elements is refused before anything is allocated for it.
                if let Some(announced) = seq.size_hint() {
                    if announced > N {
                        return Err(de::Error::invalid_length(announced, &self));
                    }
                }
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(N));
                while let Some(item) = seq.next_element()? {
                    if items.len() >= N {
                        return Err(de::Error::invalid_length(N + 1, &self));
                    }
                    items.push(item);
                }
                Ok(BoundedVec(items))
            }
        }

        deserializer.deserialize_seq(BoundedVisitor::<T, N>(PhantomData))
    }
}

/// A UTF-8 string of at most `N` bytes.
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct BoundedString<const N: usize>(String);

impl<const N: usize> BoundedString<N> {
    /// The limit of this type, in bytes.
    pub const MAX: usize = N;

    /// Builds from `text`, cutting it at the last character boundary within the limit.
    ///
    /// For texts we produce ourselves (error details), where losing the tail beats failing.
    pub fn truncating(text: &str) -> Self {
        let mut end = text.len().min(N);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Self(text.get(..end).unwrap_or_default().to_owned())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> TryFrom<String> for BoundedString<N> {
    type Error = TooLong;

    fn try_from(text: String) -> Result<Self, TooLong> {
        if text.len() > N {
            return Err(TooLong {
                max: N,
                got: text.len(),
            });
        }
        Ok(Self(text))
    }
}

impl<const N: usize> TryFrom<&str> for BoundedString<N> {
    type Error = TooLong;

    fn try_from(text: &str) -> Result<Self, TooLong> {
        Self::try_from(text.to_owned())
    }
}

impl<const N: usize> fmt::Debug for BoundedString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const N: usize> fmt::Display for BoundedString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const N: usize> Serialize for BoundedString<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de, const N: usize> Deserialize<'de> for BoundedString<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Borrowing from the input means the length is checked before we allocate a copy.
        let text = <&str>::deserialize(deserializer)?;
        if text.len() > N {
            return Err(de::Error::invalid_length(
                text.len(),
                &format!("a string of at most {N} bytes").as_str(),
            ));
        }
        Ok(Self(text.to_owned()))
    }
}

/// Bytes of at most `N` length, carried opaquely (the membership protocol's own packets).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct BoundedBytes<const N: usize>(Vec<u8>);

impl<const N: usize> BoundedBytes<N> {
    /// The limit of this type.
    pub const MAX: usize = N;

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl<const N: usize> TryFrom<Vec<u8>> for BoundedBytes<N> {
    type Error = TooLong;

    fn try_from(bytes: Vec<u8>) -> Result<Self, TooLong> {
        if bytes.len() > N {
            return Err(TooLong {
                max: N,
                got: bytes.len(),
            });
        }
        Ok(Self(bytes))
    }
}

impl<const N: usize> fmt::Debug for BoundedBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0.len())
    }
}

impl<const N: usize> Serialize for BoundedBytes<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de, const N: usize> Deserialize<'de> for BoundedBytes<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = <&[u8]>::deserialize(deserializer)?;
        if bytes.len() > N {
            return Err(de::Error::invalid_length(
                bytes.len(),
                &format!("at most {N} bytes").as_str(),
            ));
        }
        Ok(Self(bytes.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_over_its_limit_is_refused_on_decode() {
        let too_many: Vec<u8> = vec![1, 2, 3];
        let bytes = postcard::to_allocvec(&too_many).unwrap();
        let decoded: Result<BoundedVec<u8, 2>, _> = postcard::from_bytes(&bytes);
        assert!(decoded.is_err());
        let fits: BoundedVec<u8, 3> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(&*fits, &[1, 2, 3]);
    }

    #[test]
    fn a_huge_announced_length_is_refused_without_allocating() {
        // varint for u32::MAX elements followed by nothing.
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let decoded: Result<BoundedVec<u64, 4>, _> = postcard::from_bytes(&bytes);
        assert!(decoded.is_err());
    }

    #[test]
    fn truncating_a_string_respects_character_boundaries() {
        let s = BoundedString::<4>::truncating("aé€");
        assert_eq!(s.as_str(), "aé");
    }

    #[test]
    fn a_string_over_its_limit_is_refused() {
        assert!(BoundedString::<3>::try_from("abcd").is_err());
        let bytes = postcard::to_allocvec("abcd").unwrap();
        assert!(postcard::from_bytes::<BoundedString<3>>(&bytes).is_err());
    }
}
