using Microsoft.Extensions.Options;

namespace PR2.Silo;

/// <summary>Turns a start-up failure into one line a person can act on.</summary>
public static class StartupErrors
{
    public static string Describe(Exception exception)
    {
        // Validation failures name their configuration keys; show them all.
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is OptionsValidationException validation)
            {
                return string.Join("; ", validation.Failures);
            }
        }

        return exception.GetBaseException().Message.ReplaceLineEndings(" ").Trim();
    }
}
