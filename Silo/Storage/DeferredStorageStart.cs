using Orleans.Storage;

namespace PR2.Silo.Storage;

/// <summary>
/// Starts a grain storage provider on its first use instead of during silo start. The ADO.NET provider reads its
/// queries from its database when it starts; started with the silo, a silo could not start while that one server is
/// down (the fault suite starts silos during outages). Deferred, only grains that use the storage wait for it, and a
/// failed start is tried again on the next use.
/// </summary>
public sealed class DeferredStorageStart(IGrainStorage storage)
{
    private readonly SemaphoreSlim _starting = new(1, 1);
    private volatile bool _started;

    public IGrainStorage Storage => storage;

    public async Task EnsureStartedAsync()
    {
        if (_started)
        {
            return;
        }

        await _starting.WaitAsync();
        try
        {
            if (!_started && storage is ILifecycleParticipant<ISiloLifecycle> participant)
            {
                var lifecycle = new CapturingLifecycle();
                participant.Participate(lifecycle);
                foreach (var observer in lifecycle.Observers)
                {
                    await observer.OnStart(CancellationToken.None);
                }
            }

            _started = true;
        }
        finally
        {
            _starting.Release();
        }
    }

    // Collects what the provider would have run at silo start, to run it on demand.
    private sealed class CapturingLifecycle : ISiloLifecycle
    {
        public List<ILifecycleObserver> Observers { get; } = [];

        public int HighestCompletedStage => ServiceLifecycleStage.Active;

        public int LowestStoppedStage => int.MaxValue;

        public IDisposable Subscribe(string observerName, int stage, ILifecycleObserver observer)
        {
            Observers.Add(observer);
            return new Unsubscriber(() => Observers.Remove(observer));
        }

        private sealed class Unsubscriber(Action action) : IDisposable
        {
            public void Dispose() => action();
        }
    }
}
