// Silos, PostgreSQL servers and 2 cores: test classes run one after another so that timing-sensitive
// tests (fencing, fail-over) are not starved by the others.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
