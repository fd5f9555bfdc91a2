namespace PR2.Bench;

/// <summary>The message body every path writes: a JSON object of about 200 bytes.</summary>
internal static class Payload
{
    public static string Json(int writer, long sequence) =>
        $$"""{"customer":"c-{{writer:D5}}","order":{{sequence}},"total":{{sequence % 1000}}.95,"currency":"USD","items":[{"sku":"A-100","qty":2,"price":19.99},{"sku":"B-220","qty":1,"price":4.5}],"note":"benchmark payload of about two hundred bytes"}""";
}
