using PR2;
using PR2.Client;
using PR2.Samples.OrdersWeb;

// A frontend on PR2: one Pr2Client for the process, one session per request (IPr2Session is scoped), typed orders.
// Configure the cluster under Pr2:Client (Gateways or Membership, ClusterId, ServiceId); ASPNETCORE_URLS as usual.
var builder = WebApplication.CreateBuilder(args);
builder.AddPr2Client(options => options.Retry.MaxAttempts = 3);
var app = builder.Build();
const int Shard = 1;

// PR2's refusals carry a code: a conflict is the caller's to fix, a retriable one is worth trying again.
app.Use(async (context, next) =>
{
    try
    {
        await next(context);
    }
    catch (Pr2Exception e)
    {
        var status = e.IsRetriable ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status409Conflict;
        await Results.Problem(e.Message, statusCode: status, title: e.Code.ToString()).ExecuteAsync(context);
    }
});

app.MapPost("/orders/{id}", async (string id, Order order, IPr2Session session, CancellationToken cancellationToken) =>
{
    var ack = await session.InsertAsync(Shard, $"order/{id}", order, cancellationToken: cancellationToken);
    return Results.Ok(new { ack.Version, Stamp = ack.Stamp.ToString(), Token = session.SessionToken.ToString() });
});

app.MapPatch("/orders/{id}", async (string id, Order change, long? expectedVersion, IPr2Session session, CancellationToken cancellationToken) =>
{
    var ack = await session.ModifyAsync(Shard, $"order/{id}", change, expectedVersion, cancellationToken: cancellationToken);
    return Results.Ok(new { ack.Version, Stamp = ack.Stamp.ToString() });
});

app.MapGet("/orders/{id}", async (string id, IPr2Session session, CancellationToken cancellationToken) =>
{
    var read = await session.ReadRecordAsync<Order>(Shard, $"order/{id}", cancellationToken: cancellationToken);
    return read.Status == RecordStatus.Live ? Results.Ok(new { read.Version, Order = read.State }) : Results.NotFound();
});

app.Run();
