namespace PR2;

/// <summary>What a message does to its actor's record. Values are stored in the journal: never renumber.</summary>
public enum MessageKind : short
{
    /// <summary>Creates the record; the body is its initial state.</summary>
    Insert = 1,

    /// <summary>Changes a live record; the body is a JSON merge patch (RFC 7386).</summary>
    Modify = 2,

    /// <summary>Ends the record for good; the body (may be <c>{}</c>) says why.</summary>
    Cancel = 3,
}
