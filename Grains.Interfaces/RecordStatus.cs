namespace PR2;

/// <summary>The life-cycle state of a record.</summary>
public enum RecordStatus
{
    /// <summary>No insert accepted yet.</summary>
    Missing = 0,

    /// <summary>Inserted and not canceled.</summary>
    Live = 1,

    /// <summary>Canceled: final.</summary>
    Canceled = 2,
}
