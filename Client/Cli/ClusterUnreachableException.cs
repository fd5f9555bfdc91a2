namespace PR2.Client.Cli;

/// <summary>The command could not reach the cluster: nothing was sent.</summary>
public sealed class ClusterUnreachableException(string message, Exception? inner) : Exception(message, inner);
