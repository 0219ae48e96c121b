//! The `env_file` target (not built yet: every operation says so).

use async_trait::async_trait;

use super::{Change, Check, Context, Observed, Round, Target, TargetError};
use crate::manifest::EnvFileSpec;

pub struct LocalEnvFile {
    name: String,
}

impl LocalEnvFile {
    pub fn new(name: &str, _spec: &EnvFileSpec, _ctx: &Context) -> Result<Self, TargetError> {
        Ok(LocalEnvFile {
            name: name.to_string(),
        })
    }

    fn missing(&self) -> TargetError {
        TargetError::failed("the env_file target is not available in this build")
    }
}

#[async_trait]
impl Target for LocalEnvFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn describe(&self) -> String {
        "env_file".to_string()
    }

    async fn read(&self, _round: Round, _keys: &[String]) -> Result<Observed, TargetError> {
        Err(self.missing())
    }

    async fn write(&self, _observed: &Observed, _changes: &[Change]) -> Result<(), TargetError> {
        Err(self.missing())
    }

    async fn check(&self) -> Vec<Check> {
        vec![Check {
            what: "env_file backend".into(),
            outcome: Err(self.missing()),
        }]
    }
}
