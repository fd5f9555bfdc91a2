using PR2.Grains;
using PR2.Samples.SiloWithRule;
using PR2.Silo;
using PR2.Silo.Http;

// A silo hosted in your own application, with your own C# rule: the same parts the stock silo puts together.
// Configure Pr2:Topology (your PostgreSQL servers), Pr2:Silo and Pr2:Http as for the stock silo (docs/configuration.md).
var builder = WebApplication.CreateBuilder(args);
builder.UseOrleans(silo => silo.AddPr2Silo(builder.Configuration).UsePr2Clustering(builder.Configuration));
builder.Services.AddPr2Rule<OrderTotalsByCustomer>();
var http = builder.AddPr2HttpApi();
var app = builder.Build();
app.UsePr2HttpApi(http);
// What the OrderTotalsGrain (a journal stream subscriber) counted in a shard.
app.MapGet("/sample/order-totals/{shard:int}", (int shard, IGrainFactory grains) => grains.GetGrain<IOrderTotalsGrain>(shard).Get());
app.Run();
