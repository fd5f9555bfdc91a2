using PR2.Client.Cli;

var root = Pr2Cli.Build(Console.Out, Console.Error);
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    // One clear line per problem; the full usage is one --help away.
    foreach (var problem in parsed.Errors)
    {
        Console.Error.WriteLine($"error: {problem.Message}");
    }

    Console.Error.WriteLine("run 'pr2 --help' for usage");
    return Pr2Cli.BadUsage;
}

return await parsed.InvokeAsync();
