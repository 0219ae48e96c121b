//! The `keychain` target (not built yet: every operation says so).

use async_trait::async_trait;

use super::{Change, Check, Context, Observed, Round, Target, TargetError};
use crate::manifest::KeychainSpec;

pub struct KeychainTarget {
    name: String,
}

impl KeychainTarget {
    pub fn new(name: &str, _spec: &KeychainSpec, _ctx: &Context) -> Result<Self, TargetError> {
        Ok(KeychainTarget {
            name: name.to_string(),
        })
    }

    fn missing(&self) -> TargetError {
        TargetError::failed("the keychain target is not available in this build")
    }
}

#[async_trait]
impl Target for KeychainTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn describe(&self) -> String {
        "keychain".to_string()
    }

    async fn read(&self, _round: Round, _keys: &[String]) -> Result<Observed, TargetError> {
        Err(self.missing())
    }

    async fn write(&self, _observed: &Observed, _changes: &[Change]) -> Result<(), TargetError> {
        Err(self.missing())
    }

    async fn check(&self) -> Vec<Check> {
        vec![Check {
            what: "keychain backend".into(),
            outcome: Err(self.missing()),
        }]
    }
}
