namespace PR2.Silo;

/// <summary>Whether this silo runs in a Kubernetes pod set up as deploy/kubernetes does (the pod's name and IP in its environment).</summary>
public static class KubernetesPod
{
    public static bool IsCurrent =>
        !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_HOST"))
        && !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("POD_NAME"))
        && !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("POD_IP"));
}
