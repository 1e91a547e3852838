//! The rollups as one session sees them: for each, the version (if any) that
//! summarises exactly the source versions the session reads now.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;

use super::{commits, exists, url, RollupDef, Sources, ROLLUPS};
use crate::storage::{LiveTable, Warehouse};
use crate::Result;

#[derive(Clone)]
struct Loaded {
    version: u64,
    sources: Sources,
    provider: Arc<dyn TableProvider>,
}

struct Slot {
    def: &'static RollupDef,
    loaded: RwLock<Option<Loaded>>,
}

pub struct Rollups {
    warehouse: Warehouse,
    /// The session's warehouse tables, whose current versions decide freshness.
    tables: BTreeMap<String, Arc<LiveTable>>,
    slots: Vec<Slot>,
}

impl std::fmt::Debug for Rollups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rollups")
            .field("warehouse", self.warehouse.location())
            .finish()
    }
}

impl Rollups {
    /// The rollups matching the versions `tables` read now; `enabled: false` gives
    /// none, so every table function reads the raw tables.
    pub async fn open(
        ctx: &SessionContext,
        warehouse: &Warehouse,
        tables: &BTreeMap<String, Arc<LiveTable>>,
        enabled: bool,
    ) -> Result<Self> {
        let rollups = Rollups {
            warehouse: warehouse.clone(),
            tables: tables.clone(),
            slots: ROLLUPS
                .iter()
                .filter(|_| enabled)
                .map(|def| Slot {
                    def,
                    loaded: RwLock::new(None),
                })
                .collect(),
        };
        rollups.refresh(ctx).await?;
        Ok(rollups)
    }

    /// The versions of `def`'s sources the session reads now, if it reads them all.
    fn wanted(&self, def: &RollupDef) -> Option<Sources> {
        def.sources
            .iter()
            .map(|s| Some((s.to_string(), self.tables.get(*s)?.version()?)))
            .collect()
    }

    /// Loads, for each rollup, the version matching the sources read now (after the
    /// tables were refreshed, or a rollup was rebuilt).
    pub async fn refresh(&self, ctx: &SessionContext) -> Result<()> {
        for slot in &self.slots {
            let wanted = self.wanted(slot.def);
            let current = slot
                .loaded
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if current.as_ref().map(|l| Some(&l.sources)) == Some(wanted.as_ref()) {
                continue;
            }
            let loaded = match wanted {
                Some(wanted) => self.load(ctx, slot.def, wanted).await?,
                None => None,
            };
            *slot.loaded.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        }
        Ok(())
    }

    async fn load(
        &self,
        ctx: &SessionContext,
        def: &RollupDef,
        wanted: Sources,
    ) -> Result<Option<Loaded>> {
        if !exists(&self.warehouse, def).await? {
            return Ok(None);
        }
        let url = url(&self.warehouse, def)?;
        let location = self.warehouse.location();
        let latest = location.open_delta(url.clone(), None).await?;
        let matches = |(_, sources): &(u64, Option<Sources>)| sources.as_ref() == Some(&wanted);
        // The newest commit is the usual answer (a session on the latest data); only
        // time travel reads further back, through one commit per ingest.
        let mut found = commits(def, &latest, Some(1))
            .await?
            .into_iter()
            .find(matches);
        if found.is_none() {
            found = commits(def, &latest, None).await?.into_iter().find(matches);
        }
        let Some((version, _)) = found else {
            return Ok(None);
        };
        let table = if Some(version) == latest.version() {
            latest
        } else {
            location.open_delta(url, Some(version)).await?
        };
        table.update_datafusion_session(&ctx.state())?;
        Ok(Some(Loaded {
            version,
            sources: wanted,
            provider: Arc::new(crate::storage::DeltaSnapshotTable::open(&table).await?),
        }))
    }

    /// The rollup `name`, when one summarises exactly the source versions the session
    /// reads at this moment; `None` means: read the raw tables.
    pub fn fresh(&self, name: &str) -> Option<Arc<dyn TableProvider>> {
        let slot = self.slots.iter().find(|s| s.def.name == name)?;
        let loaded = slot
            .loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        (self.wanted(slot.def).as_ref() == Some(&loaded.sources)).then_some(loaded.provider)
    }

    /// (name, rollup version, sources) of each rollup in use now.
    pub fn in_use(&self) -> Vec<(&'static str, u64, Sources)> {
        self.slots
            .iter()
            .filter_map(|slot| {
                let loaded = slot
                    .loaded
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()?;
                (self.wanted(slot.def).as_ref() == Some(&loaded.sources)).then_some((
                    slot.def.name,
                    loaded.version,
                    loaded.sources,
                ))
            })
            .collect()
    }
}
