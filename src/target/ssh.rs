//! The `ssh_env` target (not built yet: every operation says so).

use async_trait::async_trait;

use super::{Change, Check, Context, Observed, Round, Target, TargetError};
use crate::manifest::SshEnvSpec;

pub struct SshEnvFile {
    name: String,
}

impl SshEnvFile {
    pub fn new(name: &str, _spec: &SshEnvSpec, _ctx: &Context) -> Result<Self, TargetError> {
        Ok(SshEnvFile {
            name: name.to_string(),
        })
    }

    fn missing(&self) -> TargetError {
        TargetError::failed("the ssh_env target is not available in this build")
    }
}

#[async_trait]
impl Target for SshEnvFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn describe(&self) -> String {
        "ssh_env".to_string()
    }

    async fn read(&self, _round: Round, _keys: &[String]) -> Result<Observed, TargetError> {
        Err(self.missing())
    }

    async fn write(&self, _observed: &Observed, _changes: &[Change]) -> Result<(), TargetError> {
        Err(self.missing())
    }

    async fn check(&self) -> Vec<Check> {
        vec![Check {
            what: "ssh_env backend".into(),
            outcome: Err(self.missing()),
        }]
    }
}
