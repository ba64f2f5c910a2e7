/* The JSON syntax check of the harnesses (json_syntax.c) accepts valid JSON
 * and refuses each kind of invalid input the JSON writer could produce. */
#include <stdio.h>
#include <string.h>
#include "fuzz/json_syntax.h"
int main(void){
  const char *good[]={"{}","[1,2,{\"a\":null}]"," \"x\\u00e9\\n\" ","-0.5e+3","{\"a\":[true,false]}\n","\"\xc3\xa9\""};
  const char *bad[]={"","{","[1,]","{\"a\"}","\"\x01\"","\"\xff\"","01","\"\\x\"","[] []","\"\xed\xa0\x80\"","tru","{\"a\":1,}"};
  int f=0;
  for(unsigned i=0;i<sizeof good/sizeof*good;i++) if(json_syntax_error(good[i],strlen(good[i]))){printf("good %u refused\n",i);f=1;}
  for(unsigned i=0;i<sizeof bad/sizeof*bad;i++) if(!json_syntax_error(bad[i],strlen(bad[i]))){printf("bad %u accepted\n",i);f=1;}
  return f;
}
